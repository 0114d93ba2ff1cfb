/* The compatibility-matrix module: built once against each frozen header in abi/history/<ver>/,
 * every build must load and work on today's host. It uses only what ABI 1.0 offered, since it
 * is compiled against the oldest header too. Adds `x-compat-abi: <major>.<minor>` (the ABI of
 * the headers it was built with) to responses. */
#include <stdio.h>
#include <switchyard/module.h>

#ifndef COMPAT_HEADERS
#error "build with -DCOMPAT_HEADERS=\"<abi/history directory name>\""
#endif

SY_MODULE_STAMP("compat", COMPAT_HEADERS);

static const sy_host_t* host;
static char abi_text[16];
static size_t abi_len;

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  (void)module_data;
  (void)json;
  (void)err;
  static int config;
  return &config;
}

static void* on_stream_create(void* config, sy_stream_t* s) {
  (void)s;
  return config;
}

static sy_filter_status_t on_response_headers(void* filter, sy_stream_t* s, bool end_stream) {
  (void)filter;
  (void)end_stream;
  host->header_set(s, SY_RESPONSE_HEADERS, (sy_str_t){"x-compat-abi", 12},
                   (sy_str_t){abi_text, abi_len});
  return SY_CONTINUE;
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "compat",
    .on_config_create = on_config_create,
    .on_stream_create = on_stream_create,
    .on_response_headers = on_response_headers,
};
static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "compat",
    .version = COMPAT_HEADERS,
    .http_filters = kFilters,
};

SY_MODULE_ENTRY(h, module) {
  (void)module;
  host = h;
  int n = snprintf(abi_text, sizeof abi_text, "%d.%d", SY_ABI_MAJOR, SY_ABI_MINOR);
  abi_len = n > 0 ? (size_t)n : 0;
  return &kDescriptor;
}
