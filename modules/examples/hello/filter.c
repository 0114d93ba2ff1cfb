/* hello's per-stream logic: adds the configured header to every response. */
#include "filter.h"

#include "config.h"

const sy_host_t* hello_host;

/* The filter keeps no per-stream state, so the config itself stands in for the filter object:
 * no allocation per stream. */
void* hello_stream_create(void* config, sy_stream_t* s) {
  (void)s;
  return config;
}

sy_filter_status_t hello_response_headers(void* filter, sy_stream_t* s, bool end_stream) {
  const hello_config_t* c = filter;
  (void)end_stream;
  /* set, not add: a response that already carries the header ends up with exactly one. */
  hello_host->header_set(s, SY_RESPONSE_HEADERS, (sy_str_t){c->name, c->name_len},
                         (sy_str_t){c->value, c->value_len});
  return SY_CONTINUE;
}
