// The HTTP filter's callbacks (filter.cc), for the descriptor in module.cc.
#pragma once

#include "lua_module.h"

namespace sylua {

void* on_stream_create(void* config, sy_stream_t* s);
sy_filter_status_t on_request_headers(void* f, sy_stream_t* s, bool end);
sy_filter_status_t on_request_body(void* f, sy_stream_t* s, bool end);
sy_filter_status_t on_request_trailers(void* f, sy_stream_t* s);
sy_filter_status_t on_response_headers(void* f, sy_stream_t* s, bool end);
sy_filter_status_t on_response_body(void* f, sy_stream_t* s, bool end);
sy_filter_status_t on_response_trailers(void* f, sy_stream_t* s);
void on_stream_destroy(void* f);

}  // namespace sylua
