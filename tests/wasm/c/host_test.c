/* The wasm module's own test filter: what the request's x-action header asks for, each an
 * observable behaviour of the host (tests/integration/test_wasm_host.py). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_wasm.h"

/* Which build this is: the swap tests build two and tell them apart by x-wasm-variant. */
#ifndef VARIANT
#define VARIANT "1"
#endif

EXPORT(proxy_abi_version_0_2_1) void abi_marker(void) {}

EXPORT(proxy_on_memory_allocate) void* on_memory_allocate(size_t size) { return malloc(size); }

static uint32_t queue_id, requests_metric, ticks_metric, ticks;

/* Plugins with one VM key share this VM, each with its own root context and configuration.
 * With the Go SDK http_headers example's config ({"header": N, "value": V}), every response
 * gets N: V, as that example does (the bench runs either file). */
#define MAX_ROOTS 16
static struct root {
  uint32_t id;
  char config[256];
  char header[64], value[64];
  uint32_t tick_call; /* the token of the tick's HTTP call */
  bool tick_called;
} roots[MAX_ROOTS];

static struct root* root_of(uint32_t id) {
  for (int i = 0; i < MAX_ROOTS; ++i)
    if (roots[i].id == id) return &roots[i];
  for (int i = 0; i < MAX_ROOTS; ++i) {
    if (!roots[i].id) {
      roots[i].id = id;
      return &roots[i];
    }
  }
  return &roots[MAX_ROOTS - 1];
}

/* What shows one VM per key (action "vm"): this instance's serial (from shared data, so every
 * VM of the vm_id gets its own), how often _initialize ran its constructors, how many root
 * contexts got on_vm_start, and a request count every plugin in this VM adds to. */
static unsigned long vm_serial;
static unsigned initializes, vm_starts, vm_requests;
__attribute__((constructor)) static void count_initialize(void) { ++initializes; }

static void logf_(int level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(int level, const char* fmt, ...) {
  char buf[512];
  __builtin_va_list ap;
  __builtin_va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  __builtin_va_end(ap);
  proxy_log(level, buf, n < (int)sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* A header value as a NUL-terminated string (or "" when absent); the caller frees it. */
static char* header(int map, const char* name) {
  char* v = NULL;
  size_t n = 0;
  if (proxy_get_header_map_value(map, name, strlen(name), &v, &n) != OK) return strdup("");
  char* s = malloc(n + 1);
  memcpy(s, v, n);
  s[n] = 0;
  free(v);
  return s;
}

static bool is(const char* a, const char* b) { return strcmp(a, b) == 0; }

static void set_header(int map, const char* name, const char* value) {
  proxy_replace_header_map_value(map, name, strlen(name), value, strlen(value));
}

static unsigned long shared_increment(const char* key);

/* Per stream: what the request asked for, and the call in flight. */
#define MAX_STREAMS 1024
static struct stream {
  uint32_t id;
  uint32_t root;
  char action[32];
  uint32_t call_token;
  bool tagged; /* network: the reply's first bytes were tagged */
} streams[MAX_STREAMS];

static struct stream* stream_of(uint32_t id) { return &streams[id % MAX_STREAMS]; }

EXPORT(proxy_on_context_create) void on_context_create(uint32_t id, uint32_t parent) {
  if (parent == 0)
    root_of(id);
  else
    stream_of(id)->root = parent;
}

EXPORT(proxy_on_vm_start) bool on_vm_start(uint32_t id, size_t size) {
  (void)id;
  (void)size;
  ++vm_starts;
  if (!vm_serial) vm_serial = shared_increment("vm-serial");
  proxy_define_metric(0, "host_test_requests", 18, &requests_metric);
  proxy_define_metric(0, "host_test_ticks", 15, &ticks_metric);
  return true;
}

/* A root context's end, when the last plugin and stream let go of its VM: logged with the
 * root's configuration, so a test sees which root heard it and in which order (on_delete is
 * below, with the stream contexts'). Stream contexts (not in roots[]) end quietly here. */
static struct root* find_root(uint32_t id) {
  for (int i = 0; i < MAX_ROOTS; ++i)
    if (roots[i].id == id) return &roots[i];
  return NULL;
}

EXPORT(proxy_on_done) bool on_done(uint32_t id) {
  struct root* r = find_root(id);
  if (r) logf_(LOG_INFO, "root '%s' done", r->config);
  return true;
}

EXPORT(proxy_on_configure) bool on_configure(uint32_t id, size_t size) {
  struct root* r = root_of(id);
  char* p = NULL;
  size_t n = 0;
  if (size && proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, size, &p, &n) == OK) {
    if (n >= sizeof r->config) n = sizeof r->config - 1;
    memcpy(r->config, p, n);
    r->config[n] = 0;
    free(p);
  }
  if (strstr(r->config, "reject")) return false;
  sscanf(r->config, "{\"header\": \"%63[^\"]\", \"value\": \"%63[^\"]\"}", r->header, r->value);
  if (strstr(r->config, "tick")) proxy_set_tick_period_milliseconds(20);
  proxy_register_shared_queue("jobs", 4, &queue_id);
  logf_(LOG_INFO, "configured with '%s'", r->config);
  return true;
}

/* The HTTP call a root context makes from its tick with config "tick-call" (once). */
static const char tick_call_pairs[] =
    "\x03\0\0\0"
    "\x07\0\0\0\x03\0\0\0"
    "\x05\0\0\0\x05\0\0\0"
    "\x0a\0\0\0\x04\0\0\0"
    ":method\0GET\0"
    ":path\0/tick\0"
    ":authority\0tick\0";

EXPORT(proxy_on_tick) void on_tick(uint32_t id) {
  struct root* r = root_of(id);
  proxy_increment_metric(ticks_metric, 1);
  if (++ticks <= 3) logf_(LOG_INFO, "tick %u", ticks);
  if (strstr(r->config, "tick-call") && !r->tick_called) {
    r->tick_called = true;
    if (proxy_http_call("backend", 7, tick_call_pairs, sizeof tick_call_pairs - 1, NULL, 0, NULL, 0,
                        5000, &r->tick_call) != OK)
      logf_(LOG_WARN, "tick call refused");
  }
}

EXPORT(proxy_on_queue_ready) void on_queue_ready(uint32_t id, uint32_t qid) {
  (void)id;
  char* d = NULL;
  size_t n = 0;
  while (proxy_dequeue_shared_queue(qid, &d, &n) == OK) {
    logf_(LOG_INFO, "dequeued '%.*s'", (int)n, d);
    free(d);
  }
}

static void status_codes(void) {
  /* The status codes of the error paths, in one header: absent header, unknown property,
   * out-of-bounds pointer, empty queue, bad context id, and a stale CAS. */
  char* v;
  size_t n;
  uint32_t cas = 0;
  int a = proxy_get_header_map_value(REQUEST_HEADERS, "x-absent", 8, &v, &n);
  int b = proxy_get_property("no\0such\0", 8, &v, &n);
  int c = proxy_log(LOG_INFO, (const char*)0x7ffffff0, 64);
  int d = proxy_dequeue_shared_queue(queue_id, &v, &n);
  int e = proxy_set_effective_context(999999);
  proxy_set_shared_data("edge", 4, "1", 1, 0);
  proxy_get_shared_data("edge", 4, &v, &n, &cas);
  proxy_set_shared_data("edge", 4, "2", 1, cas);
  int f = proxy_set_shared_data("edge", 4, "3", 1, cas);
  char out[64];
  snprintf(out, sizeof out, "%d,%d,%d,%d,%d,%d", a, b, c, d, e, f);
  proxy_add_header_map_value(REQUEST_HEADERS, "x-status-codes", 14, out, strlen(out));
}

/* Envoy's foreign functions "compress" and "uncompress" (zlib) round-trip the request's
 * x-text; an unknown name is NOT_FOUND. Header x-foreign: each status code, the compressed
 * size, and whether the round trip gave back the text. */
static void foreign_functions(void) {
  char* text = header(REQUEST_HEADERS, "x-text");
  char *packed = NULL, *unpacked = NULL, *none = NULL;
  size_t packed_len = 0, unpacked_len = 0, none_len = 0;
  int a = proxy_call_foreign_function("compress", 8, text, strlen(text), &packed, &packed_len);
  int b =
      proxy_call_foreign_function("uncompress", 10, packed, packed_len, &unpacked, &unpacked_len);
  int c = proxy_call_foreign_function("expr_create", 11, text, strlen(text), &none, &none_len);
  int d = proxy_call_foreign_function("uncompress", 10, text, strlen(text), &none, &none_len);
  bool same = unpacked_len == strlen(text) && memcmp(unpacked, text, unpacked_len) == 0;
  char out[96];
  snprintf(out, sizeof out, "%d,%d,%d,%d,%zu,%s", a, b, c, d, packed_len, same ? "same" : "diff");
  set_header(REQUEST_HEADERS, "x-foreign", out);
  free(text);
  free(packed);
  free(unpacked);
}

/* A shared counter incremented with compare-and-swap, retried on CAS_MISMATCH. */
static unsigned long shared_increment(const char* key) {
  for (;;) {
    char* v = NULL;
    size_t n = 0;
    uint32_t cas = 0;
    unsigned long cur = 0;
    if (proxy_get_shared_data(key, strlen(key), &v, &n, &cas) == OK) {
      char buf[32] = {0};
      memcpy(buf, v, n < 31 ? n : 31);
      cur = strtoul(buf, NULL, 10);
      free(v);
    }
    char next[32];
    snprintf(next, sizeof next, "%lu", cur + 1);
    int st = proxy_set_shared_data(key, strlen(key), next, strlen(next), cas);
    if (st == OK) return cur + 1;
    if (st != CAS_MISMATCH) return 0;
  }
}

static void local_reply(uint32_t status, const char* body) {
  /* One header, x-local: yes, serialized as the ABI's pairs. */
  char hdrs[4 + 8 + 8 + 4];
  uint32_t count = 1, kl = 7, vl = 3;
  memcpy(hdrs, &count, 4);
  memcpy(hdrs + 4, &kl, 4);
  memcpy(hdrs + 8, &vl, 4);
  memcpy(hdrs + 12, "x-local\0yes\0", 12);
  proxy_send_local_response(status, "wasm_test", 9, body, strlen(body), hdrs, sizeof hdrs, -1);
}

EXPORT(proxy_on_request_headers) int on_request_headers(uint32_t id, size_t n, bool eos) {
  (void)n;
  (void)eos;
  struct stream* s = stream_of(id);
  s->id = id;
  char* action = header(REQUEST_HEADERS, "x-action");
  snprintf(s->action, sizeof s->action, "%s", action);
  free(action);
  proxy_increment_metric(requests_metric, 1);
  set_header(REQUEST_HEADERS, "x-wasm-config", root_of(s->root)->config);
  if (is(s->action, "vm")) {
    char out[320];
    int len = snprintf(out, sizeof out, "%s:%lu:%u:%u:%u", root_of(s->root)->config, vm_serial,
                       initializes, vm_starts, ++vm_requests);
    proxy_add_header_map_value(REQUEST_HEADERS, "x-vm", 4, out, (size_t)len);
  }
  if (is(s->action, "local")) {
    local_reply(403, "denied by wasm\n");
    return PAUSE;
  }
  if (is(s->action, "trap")) __builtin_trap();
  if (is(s->action, "oob")) {
    volatile int* p = (volatile int*)0xfffffff0u;
    return *p;
  }
  if (is(s->action, "loop")) {
    for (volatile int i = 0;; ++i) {
    }
  }
  if (is(s->action, "oom")) {
    /* Grow until the host refuses, then fail as a plugin out of memory does. */
    long pages = 0;
    while (__builtin_wasm_memory_grow(0, 16) != (size_t)-1) pages += 16;
    logf_(LOG_WARN, "memory.grow refused after %ld more pages", pages);
    __builtin_trap();
  }
  if (is(s->action, "codes")) status_codes();
  if (is(s->action, "foreign")) foreign_functions();
  if (is(s->action, "shared")) {
    /* x-increments: how many increments this request makes (1 when absent); many keep two
     * workers between a get and its set at the same time, where a lost update would happen. */
    char* times = header(REQUEST_HEADERS, "x-increments");
    unsigned long n = *times ? strtoul(times, NULL, 10) : 1, last = 0;
    free(times);
    while (n--) last = shared_increment("counter");
    char buf[32];
    snprintf(buf, sizeof buf, "%lu", last);
    set_header(REQUEST_HEADERS, "x-counter", buf);
  }
  if (is(s->action, "enqueue")) {
    char* item = header(REQUEST_HEADERS, "x-item");
    uint32_t qid = 0;
    /* Queues are named per vm_id, as in Envoy: the tests run this plugin as vm_id "vm1". */
    int st = proxy_resolve_shared_queue("vm1", 3, "jobs", 4, &qid);
    if (st == OK) proxy_enqueue_shared_queue(qid, item, strlen(item));
    free(item);
  }
  if (is(s->action, "close")) {
    proxy_close_stream(0);
    return PAUSE;
  }
  if (is(s->action, "grpc")) {
    static const char svc[] = "switchyard.test.Echo";
    if (proxy_grpc_call("grpc", 4, svc, sizeof svc - 1, "Unary", 5, NULL, 0, "hello grpc", 10, 5000,
                        &s->call_token) != OK) {
      local_reply(500, "grpc call failed\n");
    }
    return PAUSE;
  }
  if (is(s->action, "call")) {
    static const char pairs[] =
        "\x03\0\0\0"
        "\x07\0\0\0\x04\0\0\0"
        "\x05\0\0\0\x05\0\0\0"
        "\x0a\0\0\0\x07\0\0\0"
        ":method\0POST\0"
        ":path\0/echo\0"
        ":authority\0callout\0";
    int st = proxy_http_call("backend", 7, pairs, sizeof pairs - 1, "ping", 4, NULL, 0, 5000,
                             &s->call_token);
    if (st != OK) {
      local_reply(500, "http call failed\n");
      return PAUSE;
    }
    return PAUSE;
  }
  return CONTINUE;
}

EXPORT(proxy_on_http_call_response)
void on_http_call_response(uint32_t id, uint32_t token, size_t headers, size_t body_size,
                           size_t trailers) {
  (void)trailers;
  struct root* r = root_of(id);
  if (r->tick_called && r->tick_call == token) {
    char* status = header(HTTP_CALL_RESPONSE_HEADERS, ":status");
    logf_(LOG_INFO, "tick call answered %s (%zu headers)", status, headers);
    free(status);
    return;
  }
  for (int i = 0; i < MAX_STREAMS; ++i) {
    struct stream* s = &streams[i];
    if (s->call_token != token || !is(s->action, "call")) continue;
    proxy_set_effective_context(s->id);
    char* status = header(HTTP_CALL_RESPONSE_HEADERS, ":status");
    char* body = NULL;
    size_t n = 0;
    proxy_get_buffer_bytes(HTTP_CALL_RESPONSE_BODY, 0, body_size, &body, &n);
    char out[96];
    snprintf(out, sizeof out, "%s %zu %zu", status, headers > 0 ? (size_t)1 : (size_t)0, n);
    set_header(REQUEST_HEADERS, "x-call", out);
    /* The paused request is readable from here too, once it is the effective context. */
    char* path = header(REQUEST_HEADERS, ":path");
    set_header(REQUEST_HEADERS, "x-call-saw-path", path);
    free(path);
    free(status);
    free(body);
    proxy_continue_stream(0);
    s->call_token = 0;
  }
}

/* The gRPC reply: its message, then the status, into x-grpc on the request. */
static char grpc_reply[64];

static struct stream* stream_of_token(uint32_t token) {
  for (int i = 0; i < MAX_STREAMS; ++i)
    if (streams[i].call_token == token && is(streams[i].action, "grpc")) return &streams[i];
  return NULL;
}

EXPORT(proxy_on_grpc_receive) void on_grpc_receive(uint32_t id, uint32_t token, size_t size) {
  (void)id;
  (void)token;
  char* m = NULL;
  size_t n = 0;
  if (proxy_get_buffer_bytes(GRPC_MESSAGE, 0, size, &m, &n) == OK) {
    snprintf(grpc_reply, sizeof grpc_reply, "%.*s", (int)n, m);
    free(m);
  }
}

EXPORT(proxy_on_grpc_close) void on_grpc_close(uint32_t id, uint32_t token, uint32_t status) {
  (void)id;
  struct stream* s = stream_of_token(token);
  if (!s) return;
  proxy_set_effective_context(s->id);
  char out[96];
  snprintf(out, sizeof out, "%u %s", status, grpc_reply);
  set_header(REQUEST_HEADERS, "x-grpc", out);
  proxy_continue_stream(0);
  s->call_token = 0;
}

EXPORT(proxy_on_request_body) int on_request_body(uint32_t id, size_t size, bool eos) {
  struct stream* s = stream_of(id);
  if (!is(s->action, "body")) return CONTINUE;
  if (!eos) return PAUSE; /* buffer the whole body */
  (void)size;
  proxy_set_buffer_bytes(REQUEST_BODY, 0, 0, "[prepended]", 11);
  proxy_set_buffer_bytes(REQUEST_BODY, 0xffffffff, 0, "[appended]", 10);
  return CONTINUE;
}

EXPORT(proxy_on_response_headers) int on_response_headers(uint32_t id, size_t n, bool eos) {
  (void)n;
  (void)eos;
  struct stream* s = stream_of(id);
  set_header(RESPONSE_HEADERS, "x-wasm", "host_test");
  set_header(RESPONSE_HEADERS, "x-wasm-variant", VARIANT);
  struct root* r = root_of(s->root);
  if (r->header[0]) set_header(RESPONSE_HEADERS, r->header, r->value);
  char* status = header(RESPONSE_HEADERS, ":status");
  set_header(RESPONSE_HEADERS, "x-wasm-saw-status", status);
  free(status);
  if (is(s->action, "resp-trap")) __builtin_trap();
  return CONTINUE;
}

EXPORT(proxy_on_log) void on_log(uint32_t id) {
  struct stream* s = stream_of(id);
  if (s->action[0]) logf_(LOG_INFO, "done %s", s->action);
}

EXPORT(proxy_on_delete) void on_delete(uint32_t id) {
  struct root* r = find_root(id);
  if (r)
    logf_(LOG_INFO, "root '%s' deleted", r->config);
  else
    memset(stream_of(id), 0, sizeof(struct stream));
}

/* The network filter (wasm_network): the reply's first bytes get a "WASM:" prefix, and each
 * event is logged. */
EXPORT(proxy_on_new_connection) int on_new_connection(uint32_t id) {
  logf_(LOG_INFO, "new connection %u", id);
  return CONTINUE;
}

/* Client bytes starting with "HOLD" are paused, and so is what follows on that connection;
 * "RELEASE" from another connection continues the held one (proxy_set_effective_context, then
 * proxy_continue_stream) and closes its own (proxy_close_stream). */
static uint32_t held_conn;

EXPORT(proxy_on_downstream_data) int on_downstream_data(uint32_t id, size_t size, bool eos) {
  logf_(LOG_INFO, "downstream data %zu bytes on %u", size, id);
  char* d = NULL;
  size_t n = 0;
  if (size && proxy_get_buffer_bytes(DOWNSTREAM_DATA, 0, size, &d, &n) != OK) n = 0;
  int action = CONTINUE;
  if (held_conn == id || (n >= 4 && memcmp(d, "HOLD", 4) == 0)) {
    held_conn = id;
    logf_(LOG_INFO, "holding %zu bytes on %u%s", size, id, eos ? " and the end" : "");
    action = PAUSE;
  } else if (n > 8 && memcmp(d, "ENQUEUE:", 8) == 0) {
    /* The rest goes to the queue "jobs" of vm_id vm1, whose on_queue_ready logs it. */
    uint32_t qid = 0;
    if (proxy_resolve_shared_queue("vm1", 3, "jobs", 4, &qid) == OK)
      proxy_enqueue_shared_queue(qid, d + 8, n - 8);
  } else if (n == 7 && memcmp(d, "RELEASE", 7) == 0 && held_conn) {
    int a = proxy_set_effective_context(held_conn);
    int b = proxy_continue_stream(STREAM_DOWNSTREAM);
    int c = proxy_set_effective_context(id);
    int e = proxy_close_stream(STREAM_DOWNSTREAM);
    logf_(LOG_INFO, "released %u: %d %d %d, closed %u: %d", held_conn, a, b, c, id, e);
    held_conn = 0;
    action = PAUSE;
  }
  free(d);
  return action;
}

EXPORT(proxy_on_upstream_data) int on_upstream_data(uint32_t id, size_t size, bool eos) {
  (void)size;
  (void)eos;
  struct stream* s = stream_of(id);
  if (!s->tagged) {
    s->tagged = true;
    proxy_set_buffer_bytes(UPSTREAM_DATA, 0, 0, "WASM:", 5);
  }
  return CONTINUE;
}

EXPORT(proxy_on_downstream_connection_close) void on_downstream_close(uint32_t id, int peer) {
  logf_(LOG_INFO, "connection %u closed (peer %d)", id, peer);
}
