/* Fixture "fx_stale": posts to the stream before this one, which has ended by then. The host
 * must notice the stale id (SY_ERR_STALE, or the drop function), never run the task on it. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <switchyard/module.h>

SY_MODULE_STAMP("fx_stale", "1.0.0");

static const sy_host_t* host;
static sy_module_t* self;
static uint32_t m_ran, m_dropped;
/* The id of the last stream seen, by any worker. */
static _Atomic sy_stream_id_t last_id;

typedef struct stale_stream {
  bool posted;
  sy_status_t status;
} stale_stream_t;

static void task_ran(sy_stream_t* s, void* arg) {
  (void)s;
  (void)arg;
  host->metric_add(self, m_ran, 1);
}

static void task_dropped(void* arg) {
  (void)arg;
  host->metric_add(self, m_dropped, 1);
}

static bool on_load(sy_module_t* module, void** module_data, sy_error_t* err) {
  (void)module_data;
  (void)err;
  self = module;
  return host->metric_define(module, SY_COUNTER, (sy_str_t){"ran", 3}, NULL, 0, &m_ran) == SY_OK &&
         host->metric_define(module, SY_COUNTER, (sy_str_t){"dropped", 7}, NULL, 0, &m_dropped) ==
             SY_OK;
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
  (void)s;
  return calloc(1, sizeof(stale_stream_t));
}

static sy_filter_status_t on_request_headers(void* filter, sy_stream_t* s, bool end_stream) {
  stale_stream_t* st = filter;
  (void)end_stream;
  sy_stream_id_t previous = atomic_exchange(&last_id, host->stream_id(s));
  if (previous != 0) {
    st->posted = true;
    st->status = host->post_to_stream(previous, task_ran, task_dropped, NULL);
  }
  return SY_CONTINUE;
}

static sy_filter_status_t on_response_headers(void* filter, sy_stream_t* s, bool end_stream) {
  stale_stream_t* st = filter;
  char text[16];
  (void)end_stream;
  if (st->posted) {
    int n = snprintf(text, sizeof text, "%d", (int)st->status);
    host->header_set(s, SY_RESPONSE_HEADERS, (sy_str_t){"x-stale-post", 12},
                     (sy_str_t){text, (size_t)n});
  }
  return SY_CONTINUE;
}

static void on_stream_destroy(void* filter) { free(filter); }

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "fx_stale",
    .on_config_create = on_config_create,
    .on_stream_create = on_stream_create,
    .on_request_headers = on_request_headers,
    .on_response_headers = on_response_headers,
    .on_stream_destroy = on_stream_destroy,
};
static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "fx_stale",
    .version = "1.0.0",
    .on_load = on_load,
    .http_filters = kFilters,
};

SY_MODULE_ENTRY(h, module) {
  (void)module;
  host = h;
  return &kDescriptor;
}
