/* swap_demo's per-stream logic: tag responses with the version, hold /slow... responses. */
#include <stdlib.h>
#include <string.h>

#include "swap.h"

typedef struct swap_stream {
  const swap_config_t* config;
  bool slow;
} swap_stream_t;

void* swap_stream_create(void* config, sy_stream_t* s) {
  (void)s;
  swap_stream_t* st = calloc(1, sizeof *st);
  if (st != NULL) st->config = config;
  return st; /* NULL (out of memory): this stream goes without the filter */
}

sy_filter_status_t swap_request_headers(void* filter, sy_stream_t* s, bool end_stream) {
  swap_stream_t* st = filter;
  sy_str_t path = {NULL, 0};
  (void)end_stream;
  if (swap_host->header_get(s, SY_REQUEST_HEADERS, (sy_str_t){":path", 5}, 0, &path) == SY_OK)
    st->slow = path.len >= 5 && memcmp(path.ptr, "/slow", 5) == 0;
  return SY_CONTINUE;
}

static void resume_response(sy_stream_t* s, void* arg) {
  (void)arg;
  swap_host->resume(s, SY_RESPONSE);
}

/* Nothing to free: the timer carries no argument. */
static void timer_dropped(void* arg) { (void)arg; }

sy_filter_status_t swap_response_headers(void* filter, sy_stream_t* s, bool end_stream) {
  swap_stream_t* st = filter;
  (void)end_stream;
  swap_host->header_set(s, SY_RESPONSE_HEADERS, (sy_str_t){"x-swap-version", 14},
                        (sy_str_t){swap_version_header, strlen(swap_version_header)});
  if (!st->slow || st->config->delay_ms == 0) return SY_CONTINUE;
  /* Holding the response on a timer keeps this stream, and so this generation, alive across
   * the swaps that happen meanwhile: the point of the test. */
  if (swap_host->stream_timer(s, st->config->delay_ms, resume_response, timer_dropped, NULL) ==
      NULL)
    return SY_CONTINUE;
  return SY_STOP;
}

void swap_stream_destroy(void* filter) { free(filter); }
