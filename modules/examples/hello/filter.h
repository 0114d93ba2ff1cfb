/* hello's per-stream logic: one response header. */
#ifndef HELLO_FILTER_H
#define HELLO_FILTER_H

#include <switchyard/module.h>

/* The host's table, set by the entry function. */
extern const sy_host_t* hello_host;

void* hello_stream_create(void* config, sy_stream_t* s);
sy_filter_status_t hello_response_headers(void* filter, sy_stream_t* s, bool end_stream);

#endif /* HELLO_FILTER_H */
