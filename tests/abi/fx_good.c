/* Fixture: a correct module named "fixture" that adds `x-fixture: good` to responses. */
#include "fixture.h"

SY_MODULE_STAMP(FIXTURE_NAME, "1.0.0");

static const sy_host_t* host;

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  (void)module_data;
  (void)json;
  (void)err;
  static int config; /* no settings: any non-NULL pointer will do */
  return &config;
}

static void* on_stream_create(void* config, sy_stream_t* s) {
  (void)s;
  return config;
}

static sy_filter_status_t on_response_headers(void* filter, sy_stream_t* s, bool end_stream) {
  (void)filter;
  (void)end_stream;
  host->header_set(s, SY_RESPONSE_HEADERS, (sy_str_t){"x-fixture", 9}, (sy_str_t){"good", 4});
  return SY_CONTINUE;
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "fixture",
    .on_config_create = on_config_create,
    .on_stream_create = on_stream_create,
    .on_response_headers = on_response_headers,
};
static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = FIXTURE_NAME,
    .version = "1.0.0",
    .http_filters = kFilters,
};

SY_MODULE_ENTRY(h, module) {
  (void)module;
  host = h;
  return &kDescriptor;
}
