/* A test-only module (build/tests/abi/libsy_fx_netflow.so): network filter "netflow" drives a
 * TCP proxy connection's flow with the ABI 1.2 calls (test_network_flow.py). Its `config:`
 * names one mode:
 *
 *   {"mode": "trigger"}  Client bytes are held (SY_STOP_AND_WATERMARK) and logged
 *                        "netflow holding N"; once what is held ends with "GO", or the client's
 *                        FIN is held too, a worker timer passes it all on (conn_resume).
 *                        Client bytes containing "BYE" first half-close the client's side:
 *                        conn_shutdown_write(SY_RESPONSE), then pass on.
 *   {"mode": "trickle"}  Every client chunk is held, and a worker timer every 2 ms passes on
 *                        what is held: slower than a client can send, so the proxy must pause
 *                        the client at the watermark.
 *   {"mode": "pause"}    Reading from the upstream is paused from the start
 *                        (conn_pause_reading); client bytes "R" resume it (and are dropped).
 *
 * Each connection's timer is cancelled in on_connection_destroy: a sy_conn_t* is used from the
 * timer, which the ABI allows until then. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/module.h>

SY_MODULE_STAMP("netflow", "1.0.0");

static const sy_host_t* host;
static sy_module_t* self;

enum mode { TRIGGER, TRICKLE, PAUSE };

typedef struct {
  enum mode mode;
} config_t;

typedef struct {
  enum mode mode;
  sy_conn_t* conn;
  sy_timer_t* timer;
} conn_state_t;

static void say(const char* fmt, size_t n) {
  char line[128];
  int len = snprintf(line, sizeof line, fmt, n);
  host->log(self, SY_LOG_INFO, (sy_str_t){line, (size_t)len});
}

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  (void)module_data;
  char text[256] = {0};
  memcpy(text, json.ptr, json.len < sizeof text - 1 ? json.len : sizeof text - 1);
  config_t* cfg = calloc(1, sizeof *cfg);
  if (strstr(text, "\"trigger\""))
    cfg->mode = TRIGGER;
  else if (strstr(text, "\"trickle\""))
    cfg->mode = TRICKLE;
  else if (strstr(text, "\"pause\""))
    cfg->mode = PAUSE;
  else {
    snprintf(err->message, sizeof err->message, "netflow: mode must be trigger, trickle or pause");
    free(cfg);
    return NULL;
  }
  return cfg;
}

static void on_config_destroy(void* config) { free(config); }

static void* on_connection_create(void* config, sy_conn_t* c) {
  conn_state_t* st = calloc(1, sizeof *st);
  st->mode = ((config_t*)config)->mode;
  st->conn = c;
  if (st->mode == PAUSE) host->conn_pause_reading(c, SY_RESPONSE, true);
  return st;
}

static void release(sy_worker_t* w, void* arg) {
  (void)w;
  conn_state_t* st = arg;
  st->timer = NULL;
  host->conn_resume(st->conn, st, SY_REQUEST);
}

static void dropped(void* arg) { ((conn_state_t*)arg)->timer = NULL; }

static void schedule(conn_state_t* st, uint64_t ms) {
  if (st->timer) return;
  st->timer = host->worker_timer_drop(host->conn_worker(st->conn), ms, release, dropped, st);
}

static int ends_with(sy_str_t d, const char* tail) {
  size_t n = strlen(tail);
  return d.len >= n && memcmp(d.ptr + d.len - n, tail, n) == 0;
}

static int contains(sy_str_t d, const char* needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= d.len; ++i)
    if (memcmp(d.ptr + i, needle, n) == 0) return 1;
  return 0;
}

static sy_filter_status_t on_data(void* filter, sy_conn_t* c, sy_direction_t dir, bool end_stream) {
  conn_state_t* st = filter;
  if (dir != SY_REQUEST) return SY_CONTINUE;
  sy_str_t d = {0};
  host->conn_data_get(c, dir, &d);
  switch (st->mode) {
    case TRIGGER:
      if (contains(d, "BYE")) {
        host->conn_shutdown_write(c, SY_RESPONSE);
        return SY_CONTINUE;
      }
      say("netflow holding %zu", d.len);
      if (ends_with(d, "GO") || end_stream) schedule(st, 1);
      return SY_STOP_AND_WATERMARK;
    case TRICKLE:
      schedule(st, 2);
      return SY_STOP_AND_WATERMARK;
    case PAUSE:
      if (d.len == 1 && d.ptr[0] == 'R') {
        host->conn_pause_reading(c, SY_RESPONSE, false);
        say("netflow reading upstream again (%zu byte dropped)", d.len);
        return SY_STOP;
      }
      return SY_CONTINUE;
  }
  return SY_CONTINUE;
}

static void on_connection_destroy(void* filter) {
  conn_state_t* st = filter;
  if (st->timer) host->timer_cancel(st->timer); /* its DROP clears st->timer */
  free(st);
}

static const sy_network_filter_t kNetflow = {
    .size = sizeof(sy_network_filter_t),
    .name = "netflow",
    .on_config_create = on_config_create,
    .on_config_destroy = on_config_destroy,
    .on_connection_create = on_connection_create,
    .on_data = on_data,
    .on_connection_destroy = on_connection_destroy,
};

static const sy_network_filter_t* const kNetworkFilters[] = {&kNetflow, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "netflow",
    .version = "1.0.0",
    .network_filters = kNetworkFilters,
};

SY_MODULE_ENTRY(h, module) {
  host = h;
  self = module;
  return &kDescriptor;
}
