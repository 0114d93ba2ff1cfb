/* Fixture "fx_timer_destroy": sets a long stream timer and cancels it from on_stream_destroy,
 * as a careful module does. The stream ends first, so the host has dropped the timer by then:
 * the cancel must do nothing (ABI 1.2), not touch a freed timer or drop it twice. */
#include <stdlib.h>
#include <switchyard/module.h>

SY_MODULE_STAMP("fx_timer_destroy", "1.0.0");

static const sy_host_t* host;
static sy_module_t* self;
static uint32_t m_fired, m_dropped, m_cancelled;

typedef struct timer_stream {
  sy_timer_t* timer;
} timer_stream_t;

static void fired(sy_stream_t* s, void* arg) {
  (void)s;
  (void)arg;
  host->metric_add(self, m_fired, 1);
}

static void dropped(void* arg) {
  (void)arg;
  host->metric_add(self, m_dropped, 1);
}

static bool define(sy_module_t* m, const char* name, size_t len, uint32_t* id) {
  return host->metric_define(m, SY_COUNTER, (sy_str_t){name, len}, NULL, 0, id) == SY_OK;
}

static bool on_load(sy_module_t* module, void** module_data, sy_error_t* err) {
  (void)module_data;
  (void)err;
  self = module;
  return define(module, "fired", 5, &m_fired) && define(module, "dropped", 7, &m_dropped) &&
         define(module, "cancelled", 9, &m_cancelled);
}

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  (void)module_data;
  (void)json;
  (void)err;
  static int config;
  return &config;
}

static void* on_stream_create(void* config, sy_stream_t* s) {
  (void)config;
  timer_stream_t* st = calloc(1, sizeof *st);
  /* An hour: the request is long over before it could fire. */
  if (st) st->timer = host->stream_timer(s, 3600 * 1000, fired, dropped, st);
  return st;
}

static void on_stream_destroy(void* filter) {
  timer_stream_t* st = filter;
  host->timer_cancel(st->timer);
  host->metric_add(self, m_cancelled, 1);
  free(st);
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "fx_timer_destroy",
    .on_config_create = on_config_create,
    .on_stream_create = on_stream_create,
    .on_stream_destroy = on_stream_destroy,
};
static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "fx_timer_destroy",
    .version = "1.0.0",
    .on_load = on_load,
    .http_filters = kFilters,
};

SY_MODULE_ENTRY(h, module) {
  (void)module;
  host = h;
  return &kDescriptor;
}
