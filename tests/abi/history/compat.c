/* The compatibility-matrix module: built once against each frozen header in abi/history/<ver>/,
 * every build must load and work on today's host. It uses only what ABI 1.0 offered, since it
 * is compiled against the oldest header too, and every table it hands the host (descriptor,
 * HTTP filter, network filter) has the size of that header's struct, not of today's.
 *
 * - HTTP filter `compat`: adds `x-compat-abi: <major>.<minor>` (the ABI of the headers it was
 *   built with) to responses, and `x-compat-request: <major>.<minor>` to requests (the upstream
 *   echoes it back), so both directions of the chain call into it.
 * - Network filter `compat_tcp`: writes `COMPAT <major>.<minor>\n` to the client before the
 *   upstream's first bytes.
 * - on_load / on_unload: module data lives from one to the other.
 * And, in the HTTP filter, the other 1.0 mechanisms every later host must keep working:
 * - `x-compat-hold: 1`: the request headers wait (SY_STOP) for a stream timer, which resumes.
 * - Responses: the body is buffered to its end (SY_STOP_AND_BUFFER) and gets
 *   `[compat <major>.<minor>]` appended; `x-compat-path` is the request.path attribute.
 * - Per worker (on_worker_start): a queue `compat.<worker index>`; `x-compat-enqueue: NAME`
 *   enqueues into NAME, and on_queue_ready drains it into the metric `queue_items`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/module.h>

#ifndef COMPAT_HEADERS
#error "build with -DCOMPAT_HEADERS=\"<abi/history directory name>\""
#endif

SY_MODULE_STAMP("compat", COMPAT_HEADERS);

static const sy_host_t* host;
static sy_module_t* self;
static uint32_t queue_items; /* metric id */
static char abi_text[16];
static size_t abi_len;

static sy_str_t str(const char* s) { return (sy_str_t){s, strlen(s)}; }

typedef struct {
  int loaded; /* set by on_load: the host handed the filters the module data it returned */
} compat_module_t;

static bool on_load(sy_module_t* module, void** module_data, sy_error_t* err) {
  compat_module_t* m = calloc(1, sizeof *m);
  if (m == NULL) {
    snprintf(err->message, sizeof err->message, "compat: out of memory");
    return false;
  }
  m->loaded = 1;
  host->metric_define(module, SY_COUNTER, str("queue_items"), NULL, 0, &queue_items);
  *module_data = m;
  return true;
}

static void on_unload(void* module_data) { free(module_data); }

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  (void)json;
  compat_module_t* m = module_data;
  if (m == NULL || !m->loaded) {
    snprintf(err->message, sizeof err->message, "compat: no module data from on_load");
    return NULL;
  }
  return m;
}

static void* on_stream_create(void* config, sy_stream_t* s) {
  (void)s;
  return config;
}

static void resume_request(sy_stream_t* s, void* arg) {
  (void)arg;
  host->resume(s, SY_REQUEST);
}

static void drain_into_metric(void* ctx, sy_str_t bytes, uint64_t cas) {
  (void)bytes;
  (void)cas;
  ++*(int64_t*)ctx;
}

static sy_filter_status_t on_request_headers(void* filter, sy_stream_t* s, bool end_stream) {
  (void)filter;
  (void)end_stream;
  host->header_set(s, SY_REQUEST_HEADERS, str("x-compat-request"), (sy_str_t){abi_text, abi_len});
  sy_str_t v;
  if (host->header_get(s, SY_REQUEST_HEADERS, str("x-compat-enqueue"), 0, &v) == SY_OK) {
    uint32_t id = 0;
    if (host->queue_resolve(v, &id) == SY_OK) host->queue_enqueue(id, str("item"));
  }
  if (host->header_get(s, SY_REQUEST_HEADERS, str("x-compat-hold"), 0, &v) == SY_OK &&
      host->stream_timer(s, 1, resume_request, NULL, NULL) != NULL)
    return SY_STOP;
  return SY_CONTINUE;
}

static sy_filter_status_t on_response_headers(void* filter, sy_stream_t* s, bool end_stream) {
  (void)filter;
  (void)end_stream;
  host->header_set(s, SY_RESPONSE_HEADERS, str("x-compat-abi"), (sy_str_t){abi_text, abi_len});
  sy_str_t path;
  if (host->attribute_get(s, str("request.path"), &path) == SY_OK)
    host->header_set(s, SY_RESPONSE_HEADERS, str("x-compat-path"), path);
  return SY_CONTINUE;
}

static sy_filter_status_t on_response_body(void* filter, sy_stream_t* s, bool end_stream) {
  (void)filter;
  if (!end_stream) return SY_STOP_AND_BUFFER;
  char tail[32];
  int n = snprintf(tail, sizeof tail, "[compat %s]", abi_text);
  host->body_append(s, SY_RESPONSE, SY_BODY_BUFFERED, (sy_str_t){tail, n > 0 ? (size_t)n : 0});
  return SY_CONTINUE;
}

/* Per worker: the queue this worker's config owns. */
static void* on_worker_start(void* config, sy_worker_t* w) {
  (void)config;
  char name[32];
  snprintf(name, sizeof name, "compat.%d", (int)host->worker_index(w));
  uint32_t id = 0;
  host->queue_register(self, w, str(name), &id);
  return NULL;
}

static void on_queue_ready(void* config, void* worker_data, uint32_t queue_id) {
  (void)config;
  (void)worker_data;
  int64_t items = 0;
  while (host->queue_dequeue(queue_id, drain_into_metric, &items) == SY_OK) {
  }
  host->metric_add(self, queue_items, items);
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "compat",
    .on_config_create = on_config_create,
    .on_stream_create = on_stream_create,
    .on_worker_start = on_worker_start,
    .on_request_headers = on_request_headers,
    .on_response_headers = on_response_headers,
    .on_response_body = on_response_body,
    .on_queue_ready = on_queue_ready,
};
static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

/* Per connection: whether the greeting went out yet. */
static void* on_connection_create(void* config, sy_conn_t* c) {
  (void)config;
  (void)c;
  return calloc(1, sizeof(int));
}

static sy_filter_status_t on_data(void* filter, sy_conn_t* c, sy_direction_t dir, bool end_stream) {
  (void)end_stream;
  int* greeted = filter;
  if (dir == SY_RESPONSE && !*greeted) {
    char line[32];
    int n = snprintf(line, sizeof line, "COMPAT %s\n", abi_text);
    host->conn_inject(c, SY_RESPONSE, (sy_str_t){line, n > 0 ? (size_t)n : 0});
    *greeted = 1;
  }
  return SY_CONTINUE;
}

static void on_connection_destroy(void* filter) { free(filter); }

static const sy_network_filter_t kNetworkFilter = {
    .size = sizeof(sy_network_filter_t),
    .name = "compat_tcp",
    .on_config_create = on_config_create,
    .on_connection_create = on_connection_create,
    .on_data = on_data,
    .on_connection_destroy = on_connection_destroy,
};
static const sy_network_filter_t* const kNetworkFilters[] = {&kNetworkFilter, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "compat",
    .version = COMPAT_HEADERS,
    .on_load = on_load,
    .on_unload = on_unload,
    .http_filters = kFilters,
    .network_filters = kNetworkFilters,
};

SY_MODULE_ENTRY(h, module) {
  host = h;
  self = module;
  int n = snprintf(abi_text, sizeof abi_text, "%d.%d", SY_ABI_MAJOR, SY_ABI_MINOR);
  abi_len = n > 0 ? (size_t)n : 0;
  return &kDescriptor;
}
