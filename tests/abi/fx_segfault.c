/* Fixture: module "fx_segfault", built twice from this file. Both versions add
 * `x-fx-segfault: <version>` to responses. Version 2 (FX_SEGFAULT_CRASHES) crashes the process
 * on request: `x-crash: headers` segfaults in on_request_headers, `x-crash: task` in a task it
 * posts to the stream. Version 1 ignores the header: it is the good generation a crash of
 * version 2 falls back to. */
#include <stdint.h>
#include <string.h>
#include <switchyard/module.h>

#ifdef FX_SEGFAULT_CRASHES
#define FX_VERSION "2.0.0"
#else
#define FX_VERSION "1.0.0"
#endif

SY_MODULE_STAMP("fx_segfault", FX_VERSION);

static const sy_host_t* host;

/* A real fault (SIGSEGV from the kernel), not raise(): the address is read from a volatile, so
 * the compiler cannot see a NULL dereference and turn it into a trap instruction (SIGILL). */
static volatile uintptr_t g_bad_address = 0;
static void segfault(void) { *(volatile int*)g_bad_address = 1; }

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

static void crash_task(sy_stream_t* s, void* arg) {
  (void)s;
  (void)arg;
  segfault();
}

static sy_filter_status_t on_request_headers(void* filter, sy_stream_t* s, bool end_stream) {
  (void)filter;
  (void)end_stream;
#ifdef FX_SEGFAULT_CRASHES
  sy_str_t v;
  if (host->header_get(s, SY_REQUEST_HEADERS, (sy_str_t){"x-crash", 7}, 0, &v) != SY_OK)
    return SY_CONTINUE;
  if (v.len == 7 && memcmp(v.ptr, "headers", 7) == 0) segfault();
  if (v.len == 4 && memcmp(v.ptr, "task", 4) == 0)
    host->post_to_stream(host->stream_id(s), crash_task, NULL, NULL);
#else
  (void)s;
  (void)crash_task;
#endif
  return SY_CONTINUE;
}

static sy_filter_status_t on_response_headers(void* filter, sy_stream_t* s, bool end_stream) {
  (void)filter;
  (void)end_stream;
  host->header_set(s, SY_RESPONSE_HEADERS, (sy_str_t){"x-fx-segfault", 13},
                   (sy_str_t){FX_VERSION, 1});
  return SY_CONTINUE;
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "fx_segfault",
    .on_config_create = on_config_create,
    .on_stream_create = on_stream_create,
    .on_request_headers = on_request_headers,
    .on_response_headers = on_response_headers,
};
static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "fx_segfault",
    .version = FX_VERSION,
    .http_filters = kFilters,
};

SY_MODULE_ENTRY(h, module) {
  (void)module;
  host = h;
  return &kDescriptor;
}
