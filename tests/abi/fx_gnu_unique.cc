// Fixture "fx_gnu_unique": built WITHOUT -fno-gnu-unique and with default visibility, so the
// static variable of an inline function becomes an STB_GNU_UNIQUE symbol, and glibc will never
// unload the module. The loader must warn about it. Otherwise a working module that adds
// `x-gnu-unique: <count>` to responses.
#include <switchyard/module.h>

#include <atomic>
#include <cstdio>

namespace {
const sy_host_t* g_host;
}

// Inline with external linkage, in a header in real life: its static local is "unique".
inline std::atomic<int>& responses() {
  static std::atomic<int> n{0};
  return n;
}

SY_MODULE_STAMP("fx_gnu_unique", "1.0.0");

namespace {

void* config_create(void*, sy_str_t, sy_error_t*) {
  static int config;
  return &config;
}

void* stream_create(void* config, sy_stream_t*) { return config; }

sy_filter_status_t response_headers(void*, sy_stream_t* s, bool) {
  char text[16];
  int n = std::snprintf(text, sizeof text, "%d", ++responses());
  g_host->header_set(s, SY_RESPONSE_HEADERS, {"x-gnu-unique", 12}, {text, size_t(n)});
  return SY_CONTINUE;
}

sy_http_filter_t make_filter() {
  sy_http_filter_t f{};
  f.size = sizeof f;
  f.name = "fx_gnu_unique";
  f.on_config_create = config_create;
  f.on_stream_create = stream_create;
  f.on_response_headers = response_headers;
  return f;
}

const sy_http_filter_t kFilter = make_filter();
const sy_http_filter_t* const kFilters[] = {&kFilter, nullptr};

sy_module_descriptor_t make_descriptor() {
  sy_module_descriptor_t d{};
  d.size = sizeof d;
  d.abi_major = SY_ABI_MAJOR;
  d.abi_minor = SY_ABI_MINOR;
  d.name = "fx_gnu_unique";
  d.version = "1.0.0";
  d.http_filters = kFilters;
  return d;
}

const sy_module_descriptor_t kDescriptor = make_descriptor();

}  // namespace

SY_MODULE_ENTRY(host, module) {
  (void)module;
  g_host = host;
  return &kDescriptor;
}
