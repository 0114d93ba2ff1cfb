/* A test-only module (build/tests/abi/libsy_fx_take_body.so): filter "take_body" re-writes a
 * body as a stream of its own with continue_headers_take_body (ABI 1.2), the way ext_proc's
 * FULL_DUPLEX_STREAMED mode does (test_take_body.py).
 *
 * Request header x-take: "request", "response" or "both" chooses the directions. In each, the
 * headers are held (SY_STOP_AND_WATERMARK) and let go without end of stream from a stream
 * timer acting for the filter, before the body is done. From then on the body the next hop
 * gets is "[" + the original in upper case, every chunk injected as two pieces + "]", and a
 * message with trailers gets trailer x-took: <bytes taken>.
 * Request header x-take-end: "inject" ends with inject_data(..., end_stream) (the trailers are
 * dropped then), anything else with resume() (which sends the trailers when there are some).
 * Response headers x-take-rc and x-take-again: what continue_headers_take_body returned for
 * the request, and what a second call returned. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/module.h>

SY_MODULE_STAMP("take_body", "1.0.0");

static const sy_host_t* host;

typedef struct state state_t;

typedef struct {
  state_t* st;
  sy_direction_t dir;
  int selected;
  int taken;
  int end_seen;
  int trailers_seen;
  int finished;
  unsigned long total;
  int rc, rc_again;
} dir_t;

struct state {
  int end_by_inject;
  dir_t d[2];
};

static sy_str_t str(const char* s) { return (sy_str_t){s, strlen(s)}; }

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
  state_t* st = calloc(1, sizeof(state_t));
  for (int i = 0; i < 2; ++i) {
    st->d[i].st = st;
    st->d[i].dir = (sy_direction_t)i;
    st->d[i].rc = st->d[i].rc_again = -1;
  }
  return st;
}

static void on_stream_destroy(void* filter) { free(filter); }

/* Takes every byte the filter holds and injects it, upper-cased, as two pieces. */
static void pump(dir_t* d, sy_stream_t* s) {
  sy_str_t held = {0};
  if (host->body_get(s, d->dir, SY_BODY_BUFFERED, &held) != SY_OK || held.len == 0) return;
  char* copy = malloc(held.len);
  for (size_t i = 0; i < held.len; ++i) {
    char c = held.ptr[i];
    copy[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
  }
  size_t n = held.len, half = n / 2;
  host->body_drain(s, d->dir, SY_BODY_BUFFERED, n);
  d->total += n;
  if (half) host->inject_data(s, d->dir, (sy_str_t){copy, half}, false);
  host->inject_data(s, d->dir, (sy_str_t){copy + half, n - half}, false);
  free(copy);
}

/* The original ended (and its trailers, if any, are held): the filter ends its own body. */
static void finish(dir_t* d, sy_stream_t* s) {
  if (d->finished) return;
  d->finished = 1;
  if (d->trailers_seen) {
    char n[32];
    snprintf(n, sizeof n, "%lu", d->total);
    host->header_set(s, d->dir == SY_REQUEST ? SY_REQUEST_TRAILERS : SY_RESPONSE_TRAILERS,
                     str("x-took"), str(n));
  }
  if (d->st->end_by_inject) {
    host->inject_data(s, d->dir, str("]"), true);
    return;
  }
  host->inject_data(s, d->dir, str("]"), false);
  host->resume(s, d->dir);
}

static void take(sy_stream_t* s, void* arg) {
  dir_t* d = arg;
  d->rc = host->continue_headers_take_body(s, d->dir);
  d->rc_again = host->continue_headers_take_body(s, d->dir);
  if (d->rc != SY_OK) {
    host->stream_reset(s, str("fx_take_body_refused"));
    return;
  }
  d->taken = 1;
  host->inject_data(s, d->dir, str("["), false);
  pump(d, s);
  if (d->end_seen || d->trailers_seen) finish(d, s);
}

static sy_filter_status_t on_headers(state_t* st, sy_stream_t* s, sy_direction_t dir,
                                     bool end_stream) {
  dir_t* d = &st->d[dir];
  if (!d->selected) return SY_CONTINUE;
  d->end_seen = end_stream;
  host->stream_timer(s, 0, take, NULL, d);
  return end_stream ? SY_STOP : SY_STOP_AND_WATERMARK;
}

static sy_filter_status_t on_body(state_t* st, sy_stream_t* s, sy_direction_t dir,
                                  bool end_stream) {
  dir_t* d = &st->d[dir];
  if (!d->selected) return SY_CONTINUE;
  if (end_stream) d->end_seen = 1;
  if (!d->taken) return SY_STOP_AND_WATERMARK; /* held until the timer takes the body */
  pump(d, s);
  if (end_stream) finish(d, s);
  return SY_STOP_AND_WATERMARK;
}

static sy_filter_status_t on_trailers(state_t* st, sy_stream_t* s, sy_direction_t dir) {
  dir_t* d = &st->d[dir];
  if (!d->selected) return SY_CONTINUE;
  d->trailers_seen = 1;
  if (!d->taken) return SY_STOP;
  pump(d, s);
  finish(d, s);
  return SY_STOP;
}

static sy_filter_status_t on_request_headers(void* filter, sy_stream_t* s, bool end_stream) {
  state_t* st = filter;
  sy_str_t v = {0};
  if (host->header_get(s, SY_REQUEST_HEADERS, str("x-take"), 0, &v) == SY_OK) {
    int both = v.len == 4 && memcmp(v.ptr, "both", 4) == 0;
    st->d[SY_REQUEST].selected = both || (v.len == 7 && memcmp(v.ptr, "request", 7) == 0);
    st->d[SY_RESPONSE].selected = both || (v.len == 8 && memcmp(v.ptr, "response", 8) == 0);
  }
  if (host->header_get(s, SY_REQUEST_HEADERS, str("x-take-end"), 0, &v) == SY_OK)
    st->end_by_inject = v.len == 6 && memcmp(v.ptr, "inject", 6) == 0;
  return on_headers(st, s, SY_REQUEST, end_stream);
}

static sy_filter_status_t on_request_body(void* filter, sy_stream_t* s, bool end_stream) {
  return on_body(filter, s, SY_REQUEST, end_stream);
}

static sy_filter_status_t on_request_trailers(void* filter, sy_stream_t* s) {
  return on_trailers(filter, s, SY_REQUEST);
}

static sy_filter_status_t on_response_headers(void* filter, sy_stream_t* s, bool end_stream) {
  state_t* st = filter;
  char n[16];
  snprintf(n, sizeof n, "%d", st->d[SY_REQUEST].rc);
  host->header_set(s, SY_RESPONSE_HEADERS, str("x-take-rc"), str(n));
  snprintf(n, sizeof n, "%d", st->d[SY_REQUEST].rc_again);
  host->header_set(s, SY_RESPONSE_HEADERS, str("x-take-again"), str(n));
  return on_headers(st, s, SY_RESPONSE, end_stream);
}

static sy_filter_status_t on_response_body(void* filter, sy_stream_t* s, bool end_stream) {
  return on_body(filter, s, SY_RESPONSE, end_stream);
}

static sy_filter_status_t on_response_trailers(void* filter, sy_stream_t* s) {
  return on_trailers(filter, s, SY_RESPONSE);
}

static const sy_http_filter_t take_filter = {
    .size = sizeof(sy_http_filter_t),
    .name = "take_body",
    .on_config_create = on_config_create,
    .on_stream_create = on_stream_create,
    .on_request_headers = on_request_headers,
    .on_request_body = on_request_body,
    .on_request_trailers = on_request_trailers,
    .on_response_headers = on_response_headers,
    .on_response_body = on_response_body,
    .on_response_trailers = on_response_trailers,
    .on_stream_destroy = on_stream_destroy,
};

static const sy_http_filter_t* const filters[] = {&take_filter, NULL};

static const sy_module_descriptor_t descriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "take_body",
    .version = "1.0.0",
    .http_filters = filters,
};

SY_MODULE_ENTRY(h, module) {
  (void)module;
  host = h;
  return &descriptor;
}
