/* Fixture "fx_metric_names": defines a counter named "loads", as the host's own per-module
 * counter is named, and tries a name with a newline that would forge a /stats line. The
 * module's metrics live in their own namespace (module.<module>.*), and bad names are refused
 * (SY_ERR_INVALID, recorded in the gauge "bad_name_status"). */
#include <switchyard/module.h>

SY_MODULE_STAMP("fx_metric_names", "1.0.0");

static const sy_host_t* host;

static bool on_load(sy_module_t* module, void** module_data, sy_error_t* err) {
  (void)module_data;
  (void)err;
  uint32_t loads, status_id, bad;
  if (host->metric_define(module, SY_COUNTER, (sy_str_t){"loads", 5}, NULL, 0, &loads) != SY_OK ||
      host->metric_define(module, SY_GAUGE, (sy_str_t){"bad_name_status", 15}, NULL, 0,
                          &status_id) != SY_OK)
    return false;
  host->metric_add(module, loads, 7);
  static const char kForged[] = "x\nforged.stat: 1";
  sy_status_t st = host->metric_define(module, SY_COUNTER, (sy_str_t){kForged, sizeof kForged - 1},
                                       NULL, 0, &bad);
  host->metric_set(module, status_id, (int64_t)st);
  if (st == SY_OK) host->metric_add(module, bad, 1);
  return true;
}

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  (void)module_data;
  (void)json;
  (void)err;
  static int config;
  return &config;
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "fx_metric_names",
    .on_config_create = on_config_create,
};
static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "fx_metric_names",
    .version = "1.0.0",
    .on_load = on_load,
    .http_filters = kFilters,
};

SY_MODULE_ENTRY(h, module) {
  (void)module;
  host = h;
  return &kDescriptor;
}
