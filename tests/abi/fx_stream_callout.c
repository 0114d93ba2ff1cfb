/* A test-only module (build/tests/abi/libsy_fx_stream_callout.so), written on the public header
 * alone, that drives the 1.2 streaming callouts (and stream_reset, http_callout_start/cancel)
 * the way request headers tell it (test_stream_callout.py):
 *
 *   x-mode: echo      the request body goes to the callout (POST x-callout-path, default /echo)
 *                     in pieces of x-piece bytes; the callout's response body becomes the reply.
 *           grpc      the request body's lines are gRPC messages, sent one at a time to
 *                     x-callout-path, each after the previous one's answer (ping-pong); the
 *                     reply is the answers, one a line, and x-callout-rtt-p50-us /
 *                     -p99-us: each message's round trip as the module saw it.
 *           generate  x-generate bytes go to the callout in 64 KiB pieces, respecting
 *                     SY_ABOVE_HIGH_WATERMARK / on_writable; the reply is the callout's body.
 *           hold      opens a callout, sends "hold" without ending it, and waits forever.
 *           paused    opens a callout (GET x-callout-path), pauses its response at its head,
 *                     and waits forever.
 *           fanout    x-fanout callouts at once, each echoing its own body; the reply counts
 *                     the answers that matched, that did not, and the failures.
 *           worker    an echo callout started from the worker (no stream); the answer comes
 *                     back to the stream with post_to_stream.
 *           unary-cancel  http_callout_start then http_callout_cancel at once; continues.
 *           reset-request   stream_reset in the request headers.
 *           reset-response  stream_reset at the first response body chunk.
 *   x-cluster: the callout's cluster (default "side"); x-timeout: its deadline in ms;
 *   x-callout-length: a content-length header for the callout (sent as given).
 *
 * Replies: 200 with x-callout-status, x-callout-end (what marked the end: headers, data or
 * trailers), x-callout-trailers ("name=value;" each), x-callout-writable (on_writable count),
 * x-callout-messages; or 502 with x-callout-failure (the sy_callout_failure_t number) and
 * x-callout-details; or 404 with x-callout-start (the status stream_callout_start returned).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchyard/module.h>
#include <time.h>

SY_MODULE_STAMP("stream_callout", "1.0.0");

static const sy_host_t* host;
static _Thread_local sy_worker_t* t_worker;
static atomic_int g_unary_fn_calls;

enum { ECHO, GRPC, GENERATE, HOLD, PAUSED, FANOUT, WORKER, UNARY_CANCEL, RESET_REQ, RESET_RESP };

typedef struct buf {
  char* p;
  size_t len, cap;
} buf_t;

static void buf_add(buf_t* b, const char* p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    b->p = realloc(b->p, cap);
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = 0;
}

struct fx;
typedef struct fan {
  struct fx* st;
  sy_callout_stream_t* cs;
  char sent[64];
  size_t sent_len;
  buf_t got;
} fan_t;

typedef struct fx {
  sy_stream_t* s;
  int mode;
  sy_callout_stream_t* cs;
  char cluster[64], path[128];
  char length[32]; /* x-callout-length: the callout's content-length, if any */
  uint64_t timeout;
  buf_t req, resp, trailers, frames;
  size_t piece;
  int status;
  const char* end_mark;
  unsigned writable, messages;
  uint64_t gen_total, gen_sent;
  size_t msg_pos; /* grpc: offset of the next request line */
  int fan_n, fan_done, fan_ok, fan_bad, fan_failed;
  fan_t* fans;
  /* grpc: when the message in flight was sent, and each round trip, in microseconds */
  uint64_t sent_at_us;
  uint64_t* rtt;
  size_t rtt_len, rtt_cap;
} fx_t;

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

/* The P-th percentile (0-100) of the round trips, by nearest rank. */
static uint64_t rtt_percentile(fx_t* st, int p) {
  if (st->rtt_len == 0) return 0;
  qsort(st->rtt, st->rtt_len, sizeof *st->rtt, cmp_u64);
  size_t rank = (st->rtt_len * (size_t)p + 99) / 100;
  return st->rtt[rank ? rank - 1 : 0];
}

static sy_str_t S(const char* p) { return (sy_str_t){p, strlen(p)}; }

static int status_of(const sy_header_t* h, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (h[i].name.len != 7 || memcmp(h[i].name.ptr, ":status", 7) != 0) continue;
    int v = 0;
    for (size_t k = 0; k < h[i].value.len; k++) v = v * 10 + (h[i].value.ptr[k] - '0');
    return v;
  }
  return 0;
}

static int header(sy_stream_t* s, const char* name, char* out, size_t cap) {
  sy_str_t v;
  if (host->header_get(s, SY_REQUEST_HEADERS, S(name), 0, &v) != SY_OK) return 0;
  size_t n = v.len < cap - 1 ? v.len : cap - 1;
  memcpy(out, v.ptr, n);
  out[n] = 0;
  return 1;
}

static void reply(fx_t* st, uint32_t status, const sy_header_t* h, size_t n, sy_str_t body) {
  host->send_local_reply(st->s, status, h, n, body, S("fx_stream_callout"));
}

static void reply_result(fx_t* st) {
  char status[16], writable[16], messages[16], p50[24], p99[24];
  snprintf(p50, sizeof p50, "%llu", (unsigned long long)rtt_percentile(st, 50));
  snprintf(p99, sizeof p99, "%llu", (unsigned long long)rtt_percentile(st, 99));
  snprintf(status, sizeof status, "%d", st->status);
  snprintf(writable, sizeof writable, "%u", st->writable);
  snprintf(messages, sizeof messages, "%u", st->messages);
  sy_header_t h[] = {{S("x-callout-status"), S(status)},
                     {S("x-callout-end"), S(st->end_mark ? st->end_mark : "none")},
                     {S("x-callout-trailers"), {st->trailers.p, st->trailers.len}},
                     {S("x-callout-writable"), S(writable)},
                     {S("x-callout-messages"), S(messages)},
                     {S("x-callout-rtt-p50-us"), S(p50)},
                     {S("x-callout-rtt-p99-us"), S(p99)}};
  reply(st, 200, h, 7, (sy_str_t){st->resp.p, st->resp.len});
}

static void reply_failure(fx_t* st, sy_callout_failure_t reason, sy_str_t details) {
  char r[16];
  snprintf(r, sizeof r, "%d", (int)reason);
  char d[256];
  size_t n = details.len < sizeof d - 1 ? details.len : sizeof d - 1;
  memcpy(d, details.ptr, n);
  d[n] = 0;
  for (size_t i = 0; i < n; i++)
    if (d[i] < 0x20) d[i] = ' ';
  sy_header_t h[] = {{S("x-callout-failure"), S(r)}, {S("x-callout-details"), S(d)}};
  reply(st, 502, h, 2, S("callout failed\n"));
}

/* ---- gRPC framing, by hand (the C++ SDK has a helper; this module is plain C) ---- */

static void send_grpc_message(fx_t* st, const char* p, size_t n, int end) {
  unsigned char prefix[5] = {0, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                             (unsigned char)(n >> 8), (unsigned char)n};
  host->stream_callout_send_data(st->cs, (sy_str_t){(const char*)prefix, 5}, false);
  host->stream_callout_send_data(st->cs, (sy_str_t){p, n}, end);
}

/* Sends the next request line as a message; the last one ends the request side. */
static void grpc_next(fx_t* st) {
  if (st->msg_pos >= st->req.len) {
    host->stream_callout_send_data(st->cs, S(""), true);
    return;
  }
  const char* start = st->req.p + st->msg_pos;
  const char* nl = memchr(start, '\n', st->req.len - st->msg_pos);
  size_t n = nl ? (size_t)(nl - start) : st->req.len - st->msg_pos;
  st->msg_pos += n + (nl ? 1 : 0);
  st->sent_at_us = now_us();
  send_grpc_message(st, start, n, st->msg_pos >= st->req.len);
}

static void grpc_deframe(fx_t* st) {
  size_t off = 0;
  while (st->frames.len - off >= 5) {
    const unsigned char* q = (const unsigned char*)st->frames.p + off;
    size_t n = ((size_t)q[1] << 24) | ((size_t)q[2] << 16) | ((size_t)q[3] << 8) | q[4];
    if (st->frames.len - off - 5 < n) break;
    buf_add(&st->resp, (const char*)q + 5, n);
    buf_add(&st->resp, "\n", 1);
    st->messages++;
    if (st->rtt_len == st->rtt_cap) {
      st->rtt_cap = st->rtt_cap ? 2 * st->rtt_cap : 64;
      st->rtt = realloc(st->rtt, st->rtt_cap * sizeof *st->rtt);
    }
    st->rtt[st->rtt_len++] = now_us() - st->sent_at_us;
    off += 5 + n;
    if (st->msg_pos < st->req.len) grpc_next(st);
  }
  memmove(st->frames.p, st->frames.p + off, st->frames.len - off);
  st->frames.len -= off;
}

/* ---- the callout's events (one stream's callout) ---- */

static void generate(fx_t* st) {
  static char chunk[65536];
  if (!chunk[0]) memset(chunk, 'g', sizeof chunk);
  if (st->gen_total == 0) {
    host->stream_callout_send_data(st->cs, S(""), true);
    return;
  }
  while (st->gen_sent < st->gen_total) {
    uint64_t left = st->gen_total - st->gen_sent;
    size_t n = left < sizeof chunk ? (size_t)left : sizeof chunk;
    st->gen_sent += n;
    sy_status_t rc =
        host->stream_callout_send_data(st->cs, (sy_str_t){chunk, n}, st->gen_sent == st->gen_total);
    if (rc == SY_ABOVE_HIGH_WATERMARK) return; /* on_writable calls again */
    if (rc != SY_OK) return;
  }
}

static void ev_headers(void* arg, sy_callout_stream_t* cs, const sy_header_t* h, size_t n,
                       bool end) {
  fx_t* st = arg;
  st->status = status_of(h, n);
  if (end) st->end_mark = "headers";
  if (st->mode == PAUSED) host->stream_callout_pause_reading(cs, true);
}

static void ev_data(void* arg, sy_callout_stream_t* cs, sy_str_t data, bool end) {
  fx_t* st = arg;
  if (st->mode == GRPC) {
    buf_add(&st->frames, data.ptr, data.len);
    grpc_deframe(st);
  } else {
    buf_add(&st->resp, data.ptr, data.len);
  }
  if (end) st->end_mark = "data";
}

static void ev_trailers(void* arg, sy_callout_stream_t* cs, const sy_header_t* t, size_t n) {
  fx_t* st = arg;
  for (size_t i = 0; i < n; i++) {
    buf_add(&st->trailers, t[i].name.ptr, t[i].name.len);
    buf_add(&st->trailers, "=", 1);
    buf_add(&st->trailers, t[i].value.ptr, t[i].value.len);
    buf_add(&st->trailers, ";", 1);
  }
  st->end_mark = "trailers";
}

static void ev_complete(void* arg, sy_callout_stream_t* cs) {
  fx_t* st = arg;
  st->cs = NULL;
  reply_result(st);
}

static void ev_failure(void* arg, sy_callout_stream_t* cs, sy_callout_failure_t reason,
                       sy_str_t details) {
  fx_t* st = arg;
  st->cs = NULL;
  reply_failure(st, reason, details);
}

static void ev_writable(void* arg, sy_callout_stream_t* cs) {
  fx_t* st = arg;
  st->writable++;
  if (st->mode == GENERATE) generate(st);
}

static const sy_stream_callout_callbacks_t kEvents = {sizeof(sy_stream_callout_callbacks_t),
                                                      ev_headers,
                                                      ev_data,
                                                      ev_trailers,
                                                      ev_complete,
                                                      ev_failure,
                                                      ev_writable};

/* ---- fanout: many callouts of one stream ---- */

static void fan_finish(fx_t* st) {
  if (++st->fan_done < st->fan_n) return;
  char ok[16], bad[16], failed[16];
  snprintf(ok, sizeof ok, "%d", st->fan_ok);
  snprintf(bad, sizeof bad, "%d", st->fan_bad);
  snprintf(failed, sizeof failed, "%d", st->fan_failed);
  sy_header_t h[] = {
      {S("x-fanout-ok"), S(ok)}, {S("x-fanout-bad"), S(bad)}, {S("x-fanout-failed"), S(failed)}};
  reply(st, 200, h, 3, S("fanout done\n"));
}

static void fan_data(void* arg, sy_callout_stream_t* cs, sy_str_t data, bool end) {
  fan_t* f = arg;
  buf_add(&f->got, data.ptr, data.len);
}

static void fan_complete(void* arg, sy_callout_stream_t* cs) {
  fan_t* f = arg;
  f->cs = NULL;
  if (f->got.len == f->sent_len && memcmp(f->got.p, f->sent, f->sent_len) == 0)
    f->st->fan_ok++;
  else
    f->st->fan_bad++;
  fan_finish(f->st);
}

static void fan_failure(void* arg, sy_callout_stream_t* cs, sy_callout_failure_t reason,
                        sy_str_t details) {
  fan_t* f = arg;
  f->cs = NULL;
  f->st->fan_failed++;
  fan_finish(f->st);
}

/* Built as a 1.2 module knowing only the first four slots: the host must treat the rest as
 * NULL (size-checked copy). */
static const sy_stream_callout_callbacks_t kFanEvents = {
    offsetof(sy_stream_callout_callbacks_t, on_writable),
    NULL,
    fan_data,
    NULL,
    fan_complete,
    fan_failure,
    NULL};

/* ---- worker mode: a callout with no stream ---- */

typedef struct wk {
  sy_stream_id_t stream;
  buf_t body;
  int status;
  char failure[16];
} wk_t;

static void wk_free(void* arg) {
  wk_t* w = arg;
  free(w->body.p);
  free(w);
}

static void wk_deliver(sy_stream_t* s, void* arg) {
  wk_t* w = arg;
  char status[16];
  snprintf(status, sizeof status, "%d", w->status);
  sy_header_t h[] = {{S("x-callout-status"), S(status)},
                     {S("x-callout-failure"), S(w->failure[0] ? w->failure : "-")},
                     {S("x-callout-from"), S("worker")}};
  host->send_local_reply(s, w->failure[0] ? 502 : 200, h, 3, (sy_str_t){w->body.p, w->body.len},
                         S("fx_stream_callout"));
  wk_free(w);
}

static void wk_headers(void* arg, sy_callout_stream_t* cs, const sy_header_t* h, size_t n,
                       bool end) {
  wk_t* w = arg;
  w->status = status_of(h, n);
}

static void wk_data(void* arg, sy_callout_stream_t* cs, sy_str_t data, bool end) {
  buf_add(&((wk_t*)arg)->body, data.ptr, data.len);
}

static void wk_complete(void* arg, sy_callout_stream_t* cs) {
  wk_t* w = arg;
  host->post_to_stream(w->stream, wk_deliver, wk_free, w);
}

static void wk_failure(void* arg, sy_callout_stream_t* cs, sy_callout_failure_t reason,
                       sy_str_t details) {
  wk_t* w = arg;
  snprintf(w->failure, sizeof w->failure, "%d", (int)reason);
  host->post_to_stream(w->stream, wk_deliver, wk_free, w);
}

static const sy_stream_callout_callbacks_t kWorkerEvents = {sizeof(sy_stream_callout_callbacks_t),
                                                            wk_headers,
                                                            wk_data,
                                                            NULL,
                                                            wk_complete,
                                                            wk_failure,
                                                            NULL};

/* ---- starting ---- */

static sy_status_t start(fx_t* st, const char* method, int grpc) {
  char id[32];
  snprintf(id, sizeof id, "%llu", (unsigned long long)host->stream_id(st->s));
  sy_header_t h[6] = {{S(":method"), S(method)}, {S(":path"), S(st->path)}, {S("x-fx-id"), S(id)}};
  size_t n = 3;
  if (st->length[0]) h[n++] = (sy_header_t){S("content-length"), S(st->length)};
  if (grpc) {
    h[n++] = (sy_header_t){S("content-type"), S("application/grpc")};
    h[n++] = (sy_header_t){S("te"), S("trailers")};
  }
  sy_status_t rc = host->stream_callout_start(st->s, NULL, S(st->cluster), h, n, st->timeout,
                                              &kEvents, st, &st->cs);
  if (rc != SY_OK) {
    char r[16];
    snprintf(r, sizeof r, "%d", (int)rc);
    sy_header_t e[] = {{S("x-callout-start"), S(r)}};
    reply(st, 404, e, 1, S("no callout\n"));
  }
  return rc;
}

static void start_echo(fx_t* st) {
  if (start(st, "POST", 0) != SY_OK) return;
  size_t piece = st->piece ? st->piece : (st->req.len ? st->req.len : 1);
  size_t off = 0;
  if (st->req.len == 0) host->stream_callout_send_data(st->cs, S(""), true);
  while (off < st->req.len) {
    size_t n = st->req.len - off < piece ? st->req.len - off : piece;
    host->stream_callout_send_data(st->cs, (sy_str_t){st->req.p + off, n}, off + n == st->req.len);
    off += n;
  }
}

static void start_fanout(fx_t* st) {
  st->fans = calloc((size_t)st->fan_n, sizeof(fan_t));
  sy_header_t h[] = {{S(":method"), S("POST")}, {S(":path"), S(st->path)}};
  for (int i = 0; i < st->fan_n; i++) {
    fan_t* f = &st->fans[i];
    f->st = st;
    f->sent_len = (size_t)snprintf(f->sent, sizeof f->sent, "fan-%d-of-%llu", i,
                                   (unsigned long long)host->stream_id(st->s));
    if (host->stream_callout_start(st->s, NULL, S(st->cluster), h, 2, st->timeout, &kFanEvents, f,
                                   &f->cs) != SY_OK) {
      st->fan_failed++;
      st->fan_done++;
      continue;
    }
    host->stream_callout_send_data(f->cs, (sy_str_t){f->sent, f->sent_len}, true);
  }
  if (st->fan_n == 0 || st->fan_done == st->fan_n) {
    st->fan_done--;
    fan_finish(st);
  }
}

static void start_worker(fx_t* st) {
  wk_t* w = calloc(1, sizeof *w);
  w->stream = host->stream_id(st->s);
  sy_header_t h[] = {{S(":method"), S("POST")}, {S(":path"), S(st->path)}};
  sy_callout_stream_t* cs;
  if (!t_worker || host->stream_callout_start(NULL, t_worker, S(st->cluster), h, 2, st->timeout,
                                              &kWorkerEvents, w, &cs) != SY_OK) {
    wk_free(w);
    reply(st, 500, NULL, 0, S("no worker callout\n"));
    return;
  }
  host->stream_callout_send_data(cs, (sy_str_t){st->req.p, st->req.len}, true);
}

static void unary_fn(void* arg, const sy_callout_response_t* r) {
  atomic_fetch_add(&g_unary_fn_calls, 1);
}

/* Everything the request carried is here (headers, and the body when it has one). */
static sy_filter_status_t go(fx_t* st) {
  switch (st->mode) {
    case ECHO:
      start_echo(st);
      return SY_STOP;
    case GRPC:
      if (start(st, "POST", 1) == SY_OK) grpc_next(st);
      return SY_STOP;
    case GENERATE:
      if (start(st, "POST", 0) == SY_OK) generate(st);
      return SY_STOP;
    case FANOUT:
      start_fanout(st);
      return SY_STOP;
    case WORKER:
      start_worker(st);
      return SY_STOP;
    default:
      return SY_CONTINUE;
  }
}

/* ---- the filter ---- */

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  static int config;
  return &config;
}

static void* on_worker_start(void* config, sy_worker_t* w) {
  t_worker = w;
  return NULL;
}

static void* on_stream_create(void* config, sy_stream_t* s) {
  fx_t* st = calloc(1, sizeof *st);
  st->mode = -1;
  st->s = s;
  return st;
}

/* Reads what the request headers ask for (they are not there yet in on_stream_create). */
static void configure(fx_t* st, sy_stream_t* s) {
  char mode[32];
  if (!header(s, "x-mode", mode, sizeof mode)) return;
  static const char* const kModes[] = {"echo",          "grpc",          "generate", "hold",
                                       "paused",        "fanout",        "worker",   "unary-cancel",
                                       "reset-request", "reset-response"};
  for (size_t i = 0; i < sizeof kModes / sizeof kModes[0]; i++)
    if (strcmp(mode, kModes[i]) == 0) st->mode = (int)i;
  if (!header(s, "x-cluster", st->cluster, sizeof st->cluster)) strcpy(st->cluster, "side");
  if (!header(s, "x-callout-path", st->path, sizeof st->path)) strcpy(st->path, "/echo");
  header(s, "x-callout-length", st->length, sizeof st->length);
  char v[32];
  if (header(s, "x-timeout", v, sizeof v)) st->timeout = strtoull(v, NULL, 10);
  if (header(s, "x-piece", v, sizeof v)) st->piece = strtoul(v, NULL, 10);
  if (header(s, "x-generate", v, sizeof v)) st->gen_total = strtoull(v, NULL, 10);
  if (header(s, "x-fanout", v, sizeof v)) st->fan_n = atoi(v);
}

static sy_filter_status_t on_request_headers(void* filter, sy_stream_t* s, bool end_stream) {
  fx_t* st = filter;
  st->s = s;
  configure(st, s);
  if (st->mode < 0) return SY_CONTINUE;
  switch (st->mode) {
    case HOLD:
      if (start(st, "POST", 0) == SY_OK) host->stream_callout_send_data(st->cs, S("hold"), false);
      return SY_STOP;
    case PAUSED:
      start(st, "GET", 0);
      return SY_STOP;
    case UNARY_CANCEL: {
      sy_header_t h[] = {{S(":method"), S("POST")}, {S(":path"), S(st->path)}};
      sy_callout_t* c = NULL;
      if (host->http_callout_start(s, NULL, S(st->cluster), h, 2, S("cancel me"), 0, unary_fn, st,
                                   &c) == SY_OK)
        host->http_callout_cancel(c);
      return SY_CONTINUE;
    }
    case RESET_REQ:
      host->stream_reset(s, S("fx reset in request headers"));
      return SY_STOP;
    default:
      break;
  }
  if (end_stream) return go(st);
  return SY_STOP_AND_BUFFER;
}

static sy_filter_status_t on_request_body(void* filter, sy_stream_t* s, bool end_stream) {
  fx_t* st = filter;
  if (st->mode == HOLD || st->mode == PAUSED || st->mode == UNARY_CANCEL || st->mode == RESET_REQ ||
      st->mode == RESET_RESP || st->mode < 0)
    return SY_CONTINUE;
  if (!end_stream) return SY_STOP_AND_BUFFER;
  sy_str_t body;
  host->body_get(s, SY_REQUEST, SY_BODY_BUFFERED, &body);
  buf_add(&st->req, body.ptr, body.len);
  return go(st);
}

static sy_filter_status_t on_response_headers(void* filter, sy_stream_t* s, bool end_stream) {
  fx_t* st = filter;
  if (st->mode == UNARY_CANCEL) {
    char n[16];
    snprintf(n, sizeof n, "%d", atomic_load(&g_unary_fn_calls));
    host->header_set(s, SY_RESPONSE_HEADERS, S("x-unary-fn-calls"), S(n));
  }
  return SY_CONTINUE;
}

static sy_filter_status_t on_response_body(void* filter, sy_stream_t* s, bool end_stream) {
  fx_t* st = filter;
  if (st->mode == RESET_RESP) {
    host->stream_reset(s, S("fx reset in response body"));
    return SY_STOP;
  }
  return SY_CONTINUE;
}

static void on_stream_destroy(void* filter) {
  fx_t* st = filter;
  /* The stream's end has reset every callout; the handles are still valid here, so resetting
   * again is allowed and does nothing. */
  if (st->cs) host->stream_callout_reset(st->cs);
  for (int i = 0; st->fans && i < st->fan_n; i++) {
    if (st->fans[i].cs) host->stream_callout_reset(st->fans[i].cs);
    free(st->fans[i].got.p);
  }
  free(st->fans);
  free(st->req.p);
  free(st->resp.p);
  free(st->trailers.p);
  free(st->frames.p);
  free(st->rtt);
  free(st);
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "stream_callout",
    .on_config_create = on_config_create,
    .on_worker_start = on_worker_start,
    .on_stream_create = on_stream_create,
    .on_request_headers = on_request_headers,
    .on_request_body = on_request_body,
    .on_response_headers = on_response_headers,
    .on_response_body = on_response_body,
    .on_stream_destroy = on_stream_destroy,
};

static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "stream_callout",
    .version = "1.0.0",
    .http_filters = kFilters,
};

SY_MODULE_ENTRY(h, module) {
  if (!SY_HAS_SLOT(h, sy_host_t, stream_reset)) return NULL; /* needs a 1.2 host */
  host = h;
  return &kDescriptor;
}
