/* hello: the module's stamp, filter table, descriptor and entry function. */
#include <switchyard/module.h>

#include "config.h"
#include "filter.h"

/* The stamp and the descriptor must agree; one definition keeps them so. */
#define HELLO_NAME "hello"
#define HELLO_VERSION "1.0.0"

SY_MODULE_STAMP(HELLO_NAME, HELLO_VERSION);

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  (void)module_data;
  return hello_config_parse(json, err);
}

static void on_config_destroy(void* config) { hello_config_free(config); }

static const sy_http_filter_t kAddHeader = {
    .size = sizeof(sy_http_filter_t),
    .name = "add_header",
    .on_config_create = on_config_create,
    .on_config_destroy = on_config_destroy,
    .on_stream_create = hello_stream_create,
    .on_response_headers = hello_response_headers,
};

static const sy_http_filter_t* const kHttpFilters[] = {&kAddHeader, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = HELLO_NAME,
    .version = HELLO_VERSION,
    .http_filters = kHttpFilters,
};

SY_MODULE_ENTRY(host, module) {
  (void)module;
  hello_host = host;
  return &kDescriptor;
}
