/* swap_demo's shared declarations. */
#ifndef SWAP_DEMO_SWAP_H
#define SWAP_DEMO_SWAP_H

#include <switchyard/module.h>

typedef struct swap_config {
  uint64_t delay_ms; /* how long /slow... responses are held */
} swap_config_t;

extern const sy_host_t* swap_host;
extern const char swap_version_header[]; /* "1" or "2" */

/* filter.c */
void* swap_stream_create(void* config, sy_stream_t* s);
sy_filter_status_t swap_request_headers(void* filter, sy_stream_t* s, bool end_stream);
sy_filter_status_t swap_response_headers(void* filter, sy_stream_t* s, bool end_stream);
void swap_stream_destroy(void* filter);

#endif /* SWAP_DEMO_SWAP_H */
