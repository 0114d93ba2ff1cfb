/* A test-only module (build/tests/abi/libsy_fx_watermark.so): filter "watermark" streams the
 * request body the way ext_proc's STREAMED mode does. Every body chunk is held
 * (SY_STOP_AND_WATERMARK) and handed on later, at most 64 KiB per millisecond, by a stream
 * timer acting for the filter: body_drain of the held bytes, inject_data of the same bytes,
 * and resume() once the end of the body has been handed on. A client faster than that must be
 * paused at the watermark instead of the proxy holding the whole body (test_flow_control.py).
 *
 * Request header x-status: "buffer" returns SY_STOP_AND_BUFFER instead (for comparison).
 * Response header x-watermark-ticks: how many timer ticks handed bytes on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/module.h>

SY_MODULE_STAMP("watermark", "1.0.0");

static const sy_host_t* host;

#define STEP (64 * 1024)

typedef struct {
  int timer_pending;
  int end_seen;
  int use_buffer;
  unsigned ticks;
  char copy[STEP];
} state_t;

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
  return calloc(1, sizeof(state_t));
}

static void on_stream_destroy(void* filter) { free(filter); }

static void tick(sy_stream_t* s, void* arg);

static void schedule(state_t* st, sy_stream_t* s) {
  if (st->timer_pending) return;
  st->timer_pending = 1;
  host->stream_timer(s, 1, tick, NULL, st);
}

/* Hands on at most STEP held bytes; once the end has been seen and nothing is left, resumes
 * (which passes the end of the body on). */
static void tick(sy_stream_t* s, void* arg) {
  state_t* st = arg;
  st->timer_pending = 0;
  sy_str_t held = {0};
  if (host->body_get(s, SY_REQUEST, SY_BODY_BUFFERED, &held) != SY_OK) return;
  size_t n = held.len < STEP ? held.len : STEP;
  if (n > 0) {
    memcpy(st->copy, held.ptr, n);
    host->body_drain(s, SY_REQUEST, SY_BODY_BUFFERED, n);
    host->inject_data(s, SY_REQUEST, (sy_str_t){st->copy, n}, false);
    st->ticks++;
  }
  if (held.len > n)
    schedule(st, s);
  else if (st->end_seen)
    host->resume(s, SY_REQUEST);
}

static sy_filter_status_t on_request_headers(void* filter, sy_stream_t* s, bool end_stream) {
  state_t* st = filter;
  sy_str_t v = {0};
  st->use_buffer =
      host->header_get(s, SY_REQUEST_HEADERS, (sy_str_t){"x-status", 8}, 0, &v) == SY_OK &&
      v.len == 6 && memcmp(v.ptr, "buffer", 6) == 0;
  (void)end_stream;
  return SY_CONTINUE;
}

static sy_filter_status_t on_request_body(void* filter, sy_stream_t* s, bool end_stream) {
  state_t* st = filter;
  if (st->use_buffer) return end_stream ? SY_CONTINUE : SY_STOP_AND_BUFFER;
  st->end_seen = st->end_seen || end_stream;
  schedule(st, s);
  return SY_STOP_AND_WATERMARK;
}

static sy_filter_status_t on_response_headers(void* filter, sy_stream_t* s, bool end_stream) {
  state_t* st = filter;
  (void)end_stream;
  char text[24];
  int n = snprintf(text, sizeof text, "%u", st->ticks);
  host->header_set(s, SY_RESPONSE_HEADERS, (sy_str_t){"x-watermark-ticks", 17},
                   (sy_str_t){text, (size_t)n});
  return SY_CONTINUE;
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "watermark",
    .on_config_create = on_config_create,
    .on_stream_create = on_stream_create,
    .on_request_headers = on_request_headers,
    .on_request_body = on_request_body,
    .on_response_headers = on_response_headers,
    .on_stream_destroy = on_stream_destroy,
};
static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "watermark",
    .version = "1.0.0",
    .http_filters = kFilters,
};

SY_MODULE_ENTRY(h, module) {
  (void)module;
  host = h;
  return &kDescriptor;
}
