/* Queue owners other than an HTTP filter config (ABI 1.2): a network filter config on a worker,
 * and the module itself, for a queue registered with a worker's own handle.
 *
 * - Network filter `fxq_tcp`: on_worker_start registers the queue "fxq.net.<worker index>" with
 *   its own handle and remembers its thread; on_queue_ready drains it and counts net_ready and
 *   net_items; on_worker_stop counts net_worker_stops.
 * - HTTP filter `fxq`, driven by request headers, answers every request itself:
 *     x-fxq-register: NAME   registers NAME with the worker's own handle (stream_worker);
 *     x-fxq-enqueue: NAME    enqueues x-fxq-data (or "x") into NAME; the reply's body is the
 *                            sy_status_t of queue_enqueue.
 * - The descriptor's on_queue_ready drains a queue registered by `x-fxq-register` and counts
 *   worker_ready and worker_items.
 * Every notification checks it runs on the thread of the worker that registered the queue
 * (wrong_thread counts those that do not) and is handed what belongs to it (wrong_data). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/module.h>

SY_MODULE_STAMP("fx_queue_owners", "1.0.0");

#define MAX_WORKERS 64

static const sy_host_t* host;
static sy_module_t* self;

enum {
  M_NET_READY,
  M_NET_ITEMS,
  M_NET_STOPS,
  M_WORKER_READY,
  M_WORKER_ITEMS,
  M_WRONG_THREAD,
  M_WRONG_DATA,
  M_COUNT
};
static const char* const kMetricNames[M_COUNT] = {
    "net_ready",    "net_items",    "net_worker_stops", "worker_ready",
    "worker_items", "wrong_thread", "wrong_data"};
static uint32_t metric_ids[M_COUNT];

static void count(int m, int64_t n) { host->metric_add(self, metric_ids[m], n); }

static sy_str_t str(const char* s) { return (sy_str_t){s, strlen(s)}; }

/* The module data: which thread registered a queue through each worker's own handle. */
typedef struct {
  pthread_t registered_on[MAX_WORKERS];
  int registered[MAX_WORKERS];
} module_state_t;

static void count_item(void* ctx, sy_str_t bytes, uint64_t cas) {
  (void)bytes;
  (void)cas;
  ++*(int64_t*)ctx;
}

static int64_t drain(uint32_t queue_id) {
  int64_t items = 0;
  while (host->queue_dequeue(queue_id, count_item, &items) == SY_OK) {
  }
  return items;
}

/* ---- the module itself as an owner (worker's own handle) ---- */

static void on_module_queue_ready(void* module_data, sy_worker_t* w, uint32_t queue_id) {
  module_state_t* m = module_data;
  int32_t i = host->worker_index(w);
  if (m == NULL || i < 0 || i >= MAX_WORKERS || !m->registered[i]) {
    count(M_WRONG_DATA, 1);
  } else if (!pthread_equal(m->registered_on[i], pthread_self())) {
    count(M_WRONG_THREAD, 1);
  }
  count(M_WORKER_READY, 1);
  count(M_WORKER_ITEMS, drain(queue_id));
}

/* ---- the HTTP filter that drives the test ---- */

static bool header(sy_stream_t* s, const char* name, char* out, size_t cap) {
  sy_str_t v;
  if (host->header_get(s, SY_REQUEST_HEADERS, str(name), 0, &v) != SY_OK) return false;
  if (v.len >= cap) v.len = cap - 1;
  memcpy(out, v.ptr, v.len);
  out[v.len] = '\0';
  return true;
}

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  (void)json;
  (void)err;
  return module_data;
}

static void* on_stream_create(void* config, sy_stream_t* s) {
  (void)s;
  return config;
}

static sy_filter_status_t on_request_headers(void* filter, sy_stream_t* s, bool end_stream) {
  (void)end_stream;
  module_state_t* m = filter;
  char name[128], data[128], body[32];
  sy_status_t st;
  if (header(s, "x-fxq-register", name, sizeof name)) {
    sy_worker_t* w = host->stream_worker(s);
    int32_t i = host->worker_index(w);
    if (i >= 0 && i < MAX_WORKERS) {
      m->registered_on[i] = pthread_self();
      m->registered[i] = 1;
    }
    uint32_t id = 0;
    st = host->queue_register(self, w, str(name), &id);
  } else if (header(s, "x-fxq-enqueue", name, sizeof name)) {
    if (!header(s, "x-fxq-data", data, sizeof data)) strcpy(data, "x");
    uint32_t id = 0;
    st = host->queue_resolve(str(name), &id);
    if (st == SY_OK) st = host->queue_enqueue(id, str(data));
  } else {
    return SY_CONTINUE;
  }
  int n = snprintf(body, sizeof body, "%d", (int)st);
  host->send_local_reply(s, 200, NULL, 0, (sy_str_t){body, n > 0 ? (size_t)n : 0},
                         str("fx_queue_owners"));
  return SY_STOP;
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "fxq",
    .on_config_create = on_config_create,
    .on_stream_create = on_stream_create,
    .on_request_headers = on_request_headers,
};
static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

/* ---- the network filter as an owner ---- */

typedef struct {
  pthread_t thread;
  int32_t index;
} net_worker_t;

static void* net_worker_start(void* config, sy_worker_t* w) {
  (void)config;
  net_worker_t* nw = calloc(1, sizeof *nw);
  if (nw == NULL) return NULL;
  nw->thread = pthread_self();
  nw->index = host->worker_index(w);
  char name[64];
  snprintf(name, sizeof name, "fxq.net.%d", (int)nw->index);
  uint32_t id = 0;
  host->queue_register(self, w, str(name), &id);
  return nw;
}

static void net_worker_stop(void* config, void* worker_data) {
  (void)config;
  free(worker_data);
  count(M_NET_STOPS, 1);
}

static void net_queue_ready(void* config, void* worker_data, uint32_t queue_id) {
  (void)config;
  net_worker_t* nw = worker_data;
  if (nw == NULL) {
    count(M_WRONG_DATA, 1);
  } else if (!pthread_equal(nw->thread, pthread_self())) {
    count(M_WRONG_THREAD, 1);
  }
  count(M_NET_READY, 1);
  count(M_NET_ITEMS, drain(queue_id));
}

static const sy_network_filter_t kNetworkFilter = {
    .size = sizeof(sy_network_filter_t),
    .name = "fxq_tcp",
    .on_config_create = on_config_create,
    .on_worker_start = net_worker_start,
    .on_worker_stop = net_worker_stop,
    .on_queue_ready = net_queue_ready,
};
static const sy_network_filter_t* const kNetworkFilters[] = {&kNetworkFilter, NULL};

/* ---- module ---- */

static bool on_load(sy_module_t* module, void** module_data, sy_error_t* err) {
  (void)module;
  module_state_t* m = calloc(1, sizeof *m);
  if (m == NULL) {
    snprintf(err->message, sizeof err->message, "fx_queue_owners: out of memory");
    return false;
  }
  for (int i = 0; i < M_COUNT; ++i)
    host->metric_define(self, SY_COUNTER, str(kMetricNames[i]), NULL, 0, &metric_ids[i]);
  *module_data = m;
  return true;
}

static void on_unload(void* module_data) { free(module_data); }

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "fx_queue_owners",
    .version = "1.0.0",
    .on_load = on_load,
    .on_unload = on_unload,
    .http_filters = kFilters,
    .network_filters = kNetworkFilters,
    .on_queue_ready = on_module_queue_ready,
};

SY_MODULE_ENTRY(h, module) {
  host = h;
  self = module;
  return &kDescriptor;
}
