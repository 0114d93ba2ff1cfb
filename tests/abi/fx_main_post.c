/* A test-only module (build/tests/abi/libsy_fx_main_post.so): filter "main_post" holds each
 * request, posts a task to the main thread (ABI 1.2 post_to_main), and from there one back to
 * the stream (post_to_filter), which adds request header x-on-main: yes when the task ran on
 * the thread on_load ran on (the main thread), else no, and resumes (test_flow_control.py). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <switchyard/module.h>
#include <sys/syscall.h>
#include <unistd.h>

SY_MODULE_STAMP("main_post", "1.0.0");

static const sy_host_t* host;
static long main_tid;

typedef struct {
  sy_stream_id_t id;
  uint32_t position;
  int on_main;
} hop_t;

static void free_hop(void* arg) { free(arg); }

static void back_on_stream(sy_stream_t* s, void* arg) {
  hop_t* hop = arg;
  const char* v = hop->on_main ? "yes" : "no";
  host->header_set(s, SY_REQUEST_HEADERS, (sy_str_t){"x-on-main", 9},
                   (sy_str_t){v, hop->on_main ? 3 : 2});
  host->resume(s, SY_REQUEST);
  free(hop);
}

static void on_main(void* arg) {
  hop_t* hop = arg;
  hop->on_main = syscall(SYS_gettid) == main_tid;
  host->post_to_filter(hop->id, hop->position, back_on_stream, free_hop, hop);
}

static bool on_load(sy_module_t* module, void** module_data, sy_error_t* err) {
  (void)module;
  (void)module_data;
  (void)err;
  main_tid = syscall(SYS_gettid);
  return true;
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
  (void)end_stream;
  hop_t* hop = calloc(1, sizeof *hop);
  hop->id = host->stream_id(s);
  hop->position = host->filter_index(s);
  if (host->post_to_main(on_main, free_hop, hop) != SY_OK) return SY_CONTINUE;  // dropped
  return SY_STOP;
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "main_post",
    .on_config_create = on_config_create,
    .on_stream_create = on_stream_create,
    .on_request_headers = on_request_headers,
};
static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "main_post",
    .version = "1.0.0",
    .on_load = on_load,
    .http_filters = kFilters,
};

SY_MODULE_ENTRY(h, module) {
  (void)module;
  host = h;
  return &kDescriptor;
}
