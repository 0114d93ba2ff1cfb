/* Fixture "fx_worker_post": each request posts a task to a worker, and the task makes an HTTP
 * callout to cluster "backend" with the worker handle it was given (ABI 1.2: a task posted to
 * a worker gets that worker's handle, no longer NULL). */
#include <stdlib.h>
#include <switchyard/module.h>

SY_MODULE_STAMP("fx_worker_post", "1.0.0");

static const sy_host_t* host;
static sy_module_t* self;
static uint32_t m_null_worker, m_callout_ok, m_callout_failed, m_not_started;

static void callout_done(void* arg, const sy_callout_response_t* r) {
  (void)arg;
  host->metric_add(self, r->status == 200 ? m_callout_ok : m_callout_failed, 1);
}

static void task(sy_worker_t* w, void* arg) {
  (void)arg;
  if (!w) {
    host->metric_add(self, m_null_worker, 1);
    return;
  }
  static const sy_header_t kHeaders[] = {
      {{":method", 7}, {"GET", 3}},
      {{":path", 5}, {"/echo", 5}},
  };
  if (host->http_callout(NULL, w, (sy_str_t){"backend", 7}, kHeaders, 2, (sy_str_t){NULL, 0}, 5000,
                         callout_done, NULL) != SY_OK)
    host->metric_add(self, m_not_started, 1);
}

static bool define(sy_module_t* m, const char* name, size_t len, uint32_t* id) {
  return host->metric_define(m, SY_COUNTER, (sy_str_t){name, len}, NULL, 0, id) == SY_OK;
}

static bool on_load(sy_module_t* module, void** module_data, sy_error_t* err) {
  (void)module_data;
  (void)err;
  self = module;
  return define(module, "null_worker", 11, &m_null_worker) &&
         define(module, "callout_ok", 10, &m_callout_ok) &&
         define(module, "callout_failed", 14, &m_callout_failed) &&
         define(module, "not_started", 11, &m_not_started);
}

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

static sy_filter_status_t on_request_headers(void* filter, sy_stream_t* s, bool end_stream) {
  (void)filter;
  (void)s;
  (void)end_stream;
  host->post_to_worker(-1, task, NULL);
  return SY_CONTINUE;
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "fx_worker_post",
    .on_config_create = on_config_create,
    .on_stream_create = on_stream_create,
    .on_request_headers = on_request_headers,
};
static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "fx_worker_post",
    .version = "1.0.0",
    .on_load = on_load,
    .http_filters = kFilters,
};

SY_MODULE_ENTRY(h, module) {
  (void)module;
  host = h;
  return &kDescriptor;
}
