/* tcp_tap: stamp, descriptor, entry and the module-wide counters. */
#include <stdio.h>
#include <stdlib.h>

#include "tap.h"

#define TAP_NAME "tcp_tap"
#define TAP_VERSION "1.0.0"

SY_MODULE_STAMP(TAP_NAME, TAP_VERSION);

static bool define_counter(sy_module_t* m, const char* name, size_t len, uint32_t* id) {
  return tap_host->metric_define(m, SY_COUNTER, (sy_str_t){name, len}, NULL, 0, id) == SY_OK;
}

/* The counters belong to the module, not to a config, so two listeners with a tap add up. */
static bool on_load(sy_module_t* module, void** module_data, sy_error_t* err) {
  tap_module_t* mod = calloc(1, sizeof *mod);
  if (mod == NULL) {
    snprintf(err->message, sizeof err->message, "tcp_tap: out of memory");
    return false;
  }
  mod->module = module;
  if (!define_counter(module, "bytes_in", 8, &mod->m_bytes_in) ||
      !define_counter(module, "bytes_out", 9, &mod->m_bytes_out) ||
      !define_counter(module, "connections", 11, &mod->m_connections)) {
    snprintf(err->message, sizeof err->message, "tcp_tap: the host refused its counters");
    free(mod);
    return false;
  }
  *module_data = mod;
  return true;
}

static void on_unload(void* module_data) { free(module_data); }

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  return tap_config_parse(module_data, json, err);
}

static void on_config_destroy(void* config) { tap_config_free(config); }

static const sy_network_filter_t kTap = {
    .size = sizeof(sy_network_filter_t),
    .name = "tcp_tap",
    .on_config_create = on_config_create,
    .on_config_destroy = on_config_destroy,
    .on_connection_create = tap_connection_create,
    .on_data = tap_data,
    .on_connection_destroy = tap_connection_destroy,
};

static const sy_network_filter_t* const kNetworkFilters[] = {&kTap, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = TAP_NAME,
    .version = TAP_VERSION,
    .on_load = on_load,
    .on_unload = on_unload,
    .network_filters = kNetworkFilters,
};

SY_MODULE_ENTRY(host, module) {
  (void)module;
  tap_host = host;
  return &kDescriptor;
}
