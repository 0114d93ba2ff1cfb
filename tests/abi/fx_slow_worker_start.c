/* Fixture "fx_slow_worker_start": a pass-through HTTP filter whose on_worker_start on worker 1
 * holds that worker until the test lets it go, as a filter that takes long to start there (a
 * Wasm VM compiling, a connection warming up) would. Its config is a JSON string, a path GATE:
 * worker 1 creates GATE.waiting, then waits for GATE to exist (60 s at most). Every other
 * worker starts at once. What it shows: the proxy is not ready while a worker is not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/module.h>
#include <time.h>
#include <unistd.h>

SY_MODULE_STAMP("fx_slow_worker_start", "1.0.0");

static const sy_host_t* host;

typedef struct {
  char gate[1024];
} config_t;

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  (void)module_data;
  /* A JSON string without escapes: the test's tmp_path is plain. */
  if (json.len < 2 || json.len - 2 >= sizeof(((config_t*)0)->gate) || json.ptr[0] != '"' ||
      json.ptr[json.len - 1] != '"' || memchr(json.ptr + 1, '\\', json.len - 2)) {
    snprintf(err->message, sizeof err->message,
             "fx_slow_worker_start: config must be a JSON string, a path without escapes");
    return NULL;
  }
  config_t* c = calloc(1, sizeof *c);
  if (!c) return NULL;
  memcpy(c->gate, json.ptr + 1, json.len - 2);
  return c;
}

static void on_config_destroy(void* config) { free(config); }

static void* on_worker_start(void* config, sy_worker_t* worker) {
  config_t* c = config;
  if (host->worker_index(worker) != 1) return config;
  char waiting[1100];
  snprintf(waiting, sizeof waiting, "%s.waiting", c->gate);
  FILE* f = fopen(waiting, "w");
  if (f) fclose(f);
  const struct timespec tick = {0, 10 * 1000 * 1000};
  for (int i = 0; i < 6000 && access(c->gate, F_OK) != 0; ++i) nanosleep(&tick, NULL);
  return config;
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "fx_slow_worker_start",
    .on_config_create = on_config_create,
    .on_config_destroy = on_config_destroy,
    .on_worker_start = on_worker_start,
};
static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "fx_slow_worker_start",
    .version = "1.0.0",
    .http_filters = kFilters,
};

SY_MODULE_ENTRY(h, module) {
  (void)module;
  host = h;
  return &kDescriptor;
}
