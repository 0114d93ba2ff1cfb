/* Fixture: loads, but its on_config_create returns NULL without a message. */
#include "fixture.h"

SY_MODULE_STAMP(FIXTURE_NAME, "1.0.0");

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  (void)module_data;
  (void)json;
  (void)err;
  return NULL;
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "silent",
    .on_config_create = on_config_create,
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

SY_MODULE_ENTRY(host, module) {
  (void)host;
  (void)module;
  return &kDescriptor;
}
