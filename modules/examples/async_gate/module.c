/* async_gate: stamp, descriptor, entry, and the lifecycle of its background thread. */
#include <stdio.h>
#include <stdlib.h>

#include "gate.h"
#include "poster.h"

#define GATE_NAME "async_gate"
#define GATE_VERSION "1.0.0"

SY_MODULE_STAMP(GATE_NAME, GATE_VERSION);

static bool define_counter(sy_module_t* m, const char* name, uint32_t* id) {
  sy_str_t n = {name, 0};
  while (name[n.len] != '\0') n.len++;
  return gate_host->metric_define(m, SY_COUNTER, n, NULL, 0, id) == SY_OK;
}

static bool on_load(sy_module_t* module, void** module_data, sy_error_t* err) {
  gate_module_t* mod = calloc(1, sizeof *mod);
  if (mod == NULL) {
    snprintf(err->message, sizeof err->message, "async_gate: out of memory");
    return false;
  }
  mod->module = module;
  if (!define_counter(module, "resumed_by_thread", &mod->m_resumed_by_thread) ||
      !define_counter(module, "callout_allowed", &mod->m_callout_allowed) ||
      !define_counter(module, "callout_denied", &mod->m_callout_denied) ||
      !define_counter(module, "callout_failed", &mod->m_callout_failed) ||
      !define_counter(module, "posts_dropped", &mod->m_posts_dropped)) {
    snprintf(err->message, sizeof err->message, "async_gate: the host refused its counters");
    free(mod);
    return false;
  }
  /* One thread per generation: the old and the new generation of a swap each have their own,
   * and the old one's is joined before its code is unmapped. */
  mod->poster = gate_poster_start(mod, err);
  if (mod->poster == NULL) {
    free(mod);
    return false;
  }
  *module_data = mod;
  return true;
}

static void on_unload(void* module_data) {
  gate_module_t* mod = module_data;
  gate_poster_stop(mod->poster);
  free(mod);
}

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  return gate_config_parse(module_data, json, err);
}

static void on_config_destroy(void* config) { gate_config_free(config); }

static const sy_http_filter_t kGate = {
    .size = sizeof(sy_http_filter_t),
    .name = "async_gate",
    .on_config_create = on_config_create,
    .on_config_destroy = on_config_destroy,
    .on_stream_create = gate_stream_create,
    .on_request_headers = gate_request_headers,
};

static const sy_http_filter_t* const kHttpFilters[] = {&kGate, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = GATE_NAME,
    .version = GATE_VERSION,
    .on_load = on_load,
    .on_unload = on_unload,
    .http_filters = kHttpFilters,
};

SY_MODULE_ENTRY(host, module) {
  (void)module;
  gate_host = host;
  return &kDescriptor;
}
