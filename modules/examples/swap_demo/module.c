/* swap_demo: a module built in two versions (-DSWAP_VERSION=1|2) for hot-swap tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flat_json.h"
#include "swap.h"

#ifndef SWAP_VERSION
#error "build with -DSWAP_VERSION=1 or -DSWAP_VERSION=2"
#endif
#define SWAP_STR2(x) #x
#define SWAP_STR(x) SWAP_STR2(x)
#define SWAP_NAME "swap_demo"
#define SWAP_MODULE_VERSION SWAP_STR(SWAP_VERSION) ".0.0"

SY_MODULE_STAMP(SWAP_NAME, SWAP_MODULE_VERSION);

const sy_host_t* swap_host;
const char swap_version_header[] = SWAP_STR(SWAP_VERSION);

static bool on_member(void* ctx, const char* key, fj_kind_t kind, const char* value,
                      size_t value_len, char* err, size_t err_size) {
  swap_config_t* c = ctx;
  (void)value_len;
  if (strcmp(key, "delay_ms") != 0) {
    snprintf(err, err_size, "swap_demo: unknown config key '%s' (known: delay_ms)", key);
    return false;
  }
  if (kind != FJ_NUMBER || !fj_uint(value, 60000, &c->delay_ms)) {
    snprintf(err, err_size, "swap_demo: 'delay_ms' must be an integer from 0 to 60000, got %s",
             value);
    return false;
  }
  return true;
}

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  (void)module_data;
  swap_config_t* c = calloc(1, sizeof *c);
  char why[400];
  if (c == NULL) {
    snprintf(err->message, sizeof err->message, "swap_demo: out of memory");
    return NULL;
  }
  c->delay_ms = 500;
  if (!fj_parse(json.ptr, json.len, on_member, c, why, sizeof why)) {
    bool named = strncmp(why, "swap_demo:", 10) == 0;
    snprintf(err->message, sizeof err->message, "%s%s (expected {\"delay_ms\": 500})",
             named ? "" : "swap_demo: ", why);
    free(c);
    return NULL;
  }
  return c;
}

static void on_config_destroy(void* config) { free(config); }

static const sy_http_filter_t kSwap = {
    .size = sizeof(sy_http_filter_t),
    .name = "swap_demo",
    .on_config_create = on_config_create,
    .on_config_destroy = on_config_destroy,
    .on_stream_create = swap_stream_create,
    .on_request_headers = swap_request_headers,
    .on_response_headers = swap_response_headers,
    .on_stream_destroy = swap_stream_destroy,
};

static const sy_http_filter_t* const kHttpFilters[] = {&kSwap, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = SWAP_NAME,
    .version = SWAP_MODULE_VERSION,
    .http_filters = kHttpFilters,
};

SY_MODULE_ENTRY(host, module) {
  (void)module;
  swap_host = host;
  return &kDescriptor;
}
