// The filter callbacks: which script runs for a stream, and how each direction's coroutine
// state maps onto sy_filter_status_t (as Envoy maps its Lua states onto filter statuses).
#include "filter.h"

namespace sylua {
namespace {

void continue_headers(Dir& d) {
  if (d.headers_continued) return;
  d.headers_continued = true;
  // Envoy's clear_route_cache: request headers edited before they go on re-route the request.
  if (d.is_request() && d.headers_modified && d.st->cfg->clear_route_cache)
    g_host->clear_route_cache(d.st->s);
}

// The handler is over and never touched this direction's body: step out of it, so the
// message keeps its Content-Length and its body passes without a copy.
void skip_body(Dir& d) {
  if (SY_HAS_SLOT(g_host, sy_host_t, skip_body)) g_host->skip_body(d.st->s, d.d);
}

sy_filter_status_t after_headers(Dir& d) {
  switch (d.state) {
    case State::Done:
      skip_body(d);
      continue_headers(d);
      return SY_CONTINUE;
    case State::WaitBody:
      return SY_STOP_AND_BUFFER;
    case State::HttpCall:
      // The body keeps arriving into our buffer (bounded by the listener's buffer limit).
      return d.end_seen ? SY_STOP : SY_STOP_AND_BUFFER;
    case State::Responded:
      return SY_STOP;
    default:  // WaitChunk, WaitTrailers: the headers go on, the body streams past the script
      continue_headers(d);
      return SY_CONTINUE;
  }
}

sy_filter_status_t after_data(Dir& d) {
  switch (d.state) {
    case State::WaitBody:
    case State::HttpCall:
      return SY_STOP_AND_BUFFER;
    case State::Responded:
      return SY_STOP;
    default:
      continue_headers(d);
      return SY_CONTINUE;
  }
}

sy_filter_status_t after_trailers(Dir& d) {
  switch (d.state) {
    case State::HttpCall:
    case State::Responded:
      return SY_STOP;
    default:
      continue_headers(d);
      return SY_CONTINUE;
  }
}

sy_filter_status_t headers(void* f, sy_stream_t* s, bool end_stream, sy_direction_t dir) {
  Stream* st = static_cast<Stream*>(f);
  st->s = s;
  Dir& d = st->dir[dir];
  d.end_seen = end_stream;
  d.headers_end = end_stream;
  if (!start(d)) {
    skip_body(d);
    d.headers_continued = true;
    return SY_CONTINUE;
  }
  return after_headers(d);
}

sy_filter_status_t body(void* f, sy_stream_t* s, bool end_stream, sy_direction_t dir) {
  Stream* st = static_cast<Stream*>(f);
  st->s = s;
  Dir& d = st->dir[dir];
  if (end_stream) d.end_seen = true;
  switch (d.state) {
    case State::WaitBody:
      if (!end_stream) return SY_STOP_AND_BUFFER;
      push_buffer(d.co, d, SY_BODY_BUFFERED);
      resume(d, 1);
      return after_data(d);
    case State::WaitChunk: {
      sy_str_t chunk{};
      g_host->body_get(s, dir, SY_BODY_CHUNK, &chunk);
      if (chunk.len == 0 && end_stream)
        lua_pushnil(d.co);  // the end, with no bytes: the loop ends
      else
        push_buffer(d.co, d, SY_BODY_CHUNK);
      resume(d, 1);
      return after_data(d);
    }
    case State::WaitTrailers:
      if (!end_stream) return SY_CONTINUE;
      lua_pushnil(d.co);  // ended without trailers
      resume(d, 1);
      return after_data(d);
    case State::HttpCall:
      return SY_STOP_AND_BUFFER;
    case State::Responded:
      return SY_STOP;
    default:
      return SY_CONTINUE;
  }
}

sy_filter_status_t trailers(void* f, sy_stream_t* s, sy_direction_t dir) {
  Stream* st = static_cast<Stream*>(f);
  st->s = s;
  Dir& d = st->dir[dir];
  d.end_seen = true;
  d.trailers_seen = true;
  switch (d.state) {
    case State::WaitBody:
      push_buffer(d.co, d, SY_BODY_BUFFERED);
      break;
    case State::WaitChunk:
      lua_pushnil(d.co);
      break;
    case State::WaitTrailers:
      push_headers(d.co, d, dir == SY_REQUEST ? SY_REQUEST_TRAILERS : SY_RESPONSE_TRAILERS, false);
      break;
    default:
      return after_trailers(d);
  }
  resume(d, 1);
  return after_trailers(d);
}

}  // namespace

void resumed_async(Dir& d) {
  switch (d.state) {
    case State::HttpCall:   // another call
    case State::WaitBody:   // still buffering: a body callback goes on from here
    case State::Responded:  // the local reply ended the stream
      return;
    default:
      continue_headers(d);
      g_host->resume(d.st->s, d.d);
  }
}

void* on_stream_create(void* config, sy_stream_t* s) {
  auto* cfg = static_cast<FilterConfig*>(config);
  auto* rc = static_cast<RouteConfig*>(g_host->route_config(s));
  VmSet* set = cfg->default_script.get();
  if (rc) {
    // Envoy's order: disabled (the host skips us), a route's own script, a named one, the default.
    if (rc->script) {
      set = rc->script.get();
    } else if (rc->has_name) {
      auto it = cfg->named.find(rc->name);
      set = it == cfg->named.end() ? nullptr : it->second.get();  // unknown name: no-op
    }
  }
  if (!set) return nullptr;
  int worker = g_host->worker_index(g_host->stream_worker(s));
  std::shared_ptr<Vm> vm = set->get(worker, cfg->stats);
  if (!vm || (vm->on_request == LUA_NOREF && vm->on_response == LUA_NOREF)) return nullptr;
  auto* st = new Stream();
  st->cfg = cfg;
  st->rc = rc;
  st->vm = std::move(vm);
  st->s = s;
  st->id = g_host->stream_id(s);
  for (int i = 0; i < 2; ++i) {
    st->dir[i].st = st;
    st->dir[i].d = sy_direction_t(i);
  }
  return st;
}

sy_filter_status_t on_request_headers(void* f, sy_stream_t* s, bool end) {
  return headers(f, s, end, SY_REQUEST);
}
sy_filter_status_t on_request_body(void* f, sy_stream_t* s, bool end) {
  return body(f, s, end, SY_REQUEST);
}
sy_filter_status_t on_request_trailers(void* f, sy_stream_t* s) {
  return trailers(f, s, SY_REQUEST);
}
sy_filter_status_t on_response_headers(void* f, sy_stream_t* s, bool end) {
  return headers(f, s, end, SY_RESPONSE);
}
sy_filter_status_t on_response_body(void* f, sy_stream_t* s, bool end) {
  return body(f, s, end, SY_RESPONSE);
}
sy_filter_status_t on_response_trailers(void* f, sy_stream_t* s) {
  return trailers(f, s, SY_RESPONSE);
}
void on_stream_destroy(void* f) { delete static_cast<Stream*>(f); }

}  // namespace sylua
