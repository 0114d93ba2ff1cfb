#include "tests/fuzz/module_stream.h"

#include <algorithm>
#include <cstdio>
#include <string_view>

#include "tests/fuzz/fuzz_check.h"

namespace fuzzhost {

namespace {

// The stream every input starts with: a POST with a few headers (one repeated), trailers both
// ways, a gRPC-looking response, and the attributes the modules ask for.
void default_stream() {
  Stream& st = state().stream;
  st.headers[SY_REQUEST_HEADERS] = {{":method", "POST"},
                                    {":path", "/a?b=c"},
                                    {":authority", "example.test"},
                                    {":scheme", "http"},
                                    {"content-type", "text/plain"},
                                    {"x-a", "1"},
                                    {"x-a", "2"}};
  st.headers[SY_REQUEST_TRAILERS] = {{"x-t", "t"}};
  st.headers[SY_RESPONSE_HEADERS] = {{":status", "200"}, {"content-type", "text/plain"}};
  st.headers[SY_RESPONSE_TRAILERS] = {{"grpc-status", "0"}};
  st.attributes = {{"request.path", "/a?b=c"},
                   {"request.method", "POST"},
                   {"request.host", "example.test"},
                   {"source.address", "127.0.0.1:5000"},
                   {"request.id", "42"},
                   {"xds.route_name", "r"}};
}

}  // namespace

StreamDriver::StreamDriver(const sy_http_filter_t* f, void* filter, unsigned shape)
    : f_(f), filter_(filter) {
  static const size_t kSizes[] = {1, 13, 700, 20000};
  size_t chunks = 1 + ((shape >> 4) & 3), size = kSizes[(shape >> 6) & 3];
  for (sy_direction_t dir : {SY_REQUEST, SY_RESPONSE}) {
    bool has_body = shape & (dir == SY_REQUEST ? 1 : 4);
    bool has_trailers = shape & (dir == SY_REQUEST ? 2 : 8);
    events_.push_back({dir, kHeaders, !has_body && !has_trailers, {}});
    if (has_body)
      for (size_t i = 0; i < chunks; ++i)
        events_.push_back(
            {dir, kBody, i + 1 == chunks && !has_trailers, std::string(size, char('a' + i))});
    if (has_trailers) events_.push_back({dir, kTrailers, true, {}});
  }
}

bool StreamDriver::done() const { return next_ == events_.size(); }

void StreamDriver::after_body(sy_direction_t dir, sy_filter_status_t st) {
  Stream& s = state().stream;
  if (st == SY_CONTINUE) {
    s.held_headers[dir] = false;
    s.passed[dir] += s.buf[dir];
    s.buf[dir].clear();
  } else if (st == SY_STOP) {
    s.paused[dir] = true;
  }
  s.off[dir] = s.buf[dir].size();
}

bool StreamDriver::step() {
  Stream& s = state().stream;
  if (finished_ || s.ended || done()) return false;
  const Event& e = events_[next_];
  // The response starts once the request went on (its headers at least), as the chain does.
  if (s.paused[e.dir] ||
      (e.dir == SY_RESPONSE && (s.paused[SY_REQUEST] || s.held_headers[SY_REQUEST])))
    return false;
  ++next_;
  sy_stream_t* h = stream_handle();
  bool req = e.dir == SY_REQUEST;
  sy_filter_status_t st;
  // A filter without a callback for a phase lets it pass, as the chain does.
  auto call = [&](auto fn, auto... args) { return fn ? fn(filter_, h, args...) : SY_CONTINUE; };
  switch (e.kind) {
    case kHeaders:
      st = call(req ? f_->on_request_headers : f_->on_response_headers, e.end);
      FUZZ_CHECK(st >= SY_CONTINUE && st <= SY_STOP_AND_WATERMARK);
      // A stop at the end of the message (no body follows) pauses until resume().
      if (st == SY_STOP || (e.end && st != SY_CONTINUE)) s.paused[e.dir] = true;
      s.held_headers[e.dir] = st != SY_CONTINUE;
      break;
    case kBody:
      s.off[e.dir] = s.buf[e.dir].size();
      s.buf[e.dir] += e.data;
      st = call(req ? f_->on_request_body : f_->on_response_body, e.end);
      FUZZ_CHECK(st >= SY_CONTINUE && st <= SY_STOP_AND_WATERMARK);
      after_body(e.dir, st);
      if (e.end && st != SY_CONTINUE) s.paused[e.dir] = true;
      break;
    case kTrailers:
      st = call(req ? f_->on_request_trailers : f_->on_response_trailers);
      FUZZ_CHECK(st >= SY_CONTINUE && st <= SY_STOP_AND_WATERMARK);
      if (st != SY_CONTINUE) s.paused[e.dir] = true;
      break;
  }
  return true;
}

void StreamDriver::finish() {
  if (finished_) return;
  finished_ = true;
  sy_stream_t* h = stream_handle();
  if (f_->on_stream_complete) f_->on_stream_complete(filter_, h);
  end_stream();
  f_->on_stream_destroy(filter_);
}

namespace {

sy_str_t str(std::string_view s) { return {s.data(), s.size()}; }

// "name: value" lines, an empty line, the body: a unary callout's answer from fuzz bytes.
void split_answer(std::string_view in, Fields* headers, std::string_view* body) {
  while (!in.empty()) {
    size_t eol = in.find('\n');
    std::string_view line = in.substr(0, eol);
    in = eol == std::string_view::npos ? std::string_view() : in.substr(eol + 1);
    if (line.empty()) break;
    size_t colon = line.find(':');
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    headers->emplace_back(line.substr(0, colon), value);
  }
  *body = in;
}

}  // namespace

void run_ops(StreamDriver& stream, const uint8_t* data, size_t size) {
  size_t i = 0;
  auto byte = [&]() -> uint8_t { return i < size ? data[i++] : 0; };
  auto bytes = [&](size_t n) {
    n = std::min(n, size - i);
    std::string_view v(reinterpret_cast<const char*>(data + i), n);
    i += n;
    return v;
  };
  StreamCallout* last = nullptr;
  bool head_sent = false;  // the newest open callout got its response head
  // The host delivers a response head before any body or trailers.
  auto head = [&](StreamCallout* c) {
    if (head_sent) return true;
    head_sent = true;
    sy_header_t h[] = {{str(":status"), str("200")},
                       {str("content-type"), str("application/grpc")}};
    c->cb->on_headers(c->arg, reinterpret_cast<sy_callout_stream_t*>(c), h, 2, false);
    return !c->over;
  };
  auto complete = [](StreamCallout* c) {
    if (c->over) return;
    c->over = true;
    c->cb->on_complete(c->arg, reinterpret_cast<sy_callout_stream_t*>(c));
  };
  while (i < size && !state().stream.ended) {
    uint8_t op = byte() % 9;
    StreamCallout* c = open_callout();
    if (c != last) head_sent = false, last = c;
    auto* cs = reinterpret_cast<sy_callout_stream_t*>(c);
    switch (op) {
      case 0:
        stream.step();
        break;
      case 1: {
        std::string_view v = bytes(byte());
        if (c && head(c)) c->cb->on_data(c->arg, cs, str(v), false);
        break;
      }
      case 2: {
        uint8_t b = byte();
        if (!c || head_sent) break;
        head_sent = true;
        sy_header_t h[] = {{str(":status"), str(b & 1 ? "503" : "200")},
                           {str("grpc-status"), str(b & 4 ? "14" : "0")}};
        bool end = b & 2;
        c->cb->on_headers(c->arg, cs, h, end ? 2 : 1, end);
        if (end) complete(c);
        break;
      }
      case 3: {
        std::string code = std::to_string(byte() % 17);
        if (!c || !head(c)) break;
        sy_header_t t[] = {{str("grpc-status"), str(code)}, {str("grpc-message"), str("m")}};
        c->cb->on_trailers(c->arg, cs, t, 2);
        complete(c);
        break;
      }
      case 4:
        if (c) complete(c);
        break;
      case 5: {
        auto reason = static_cast<sy_callout_failure_t>(byte() % 6);
        if (!c) break;
        c->over = true;
        c->cb->on_failure(c->arg, cs, reason, str("fuzz"));
        break;
      }
      case 6:
        if (!fire_timer()) run_task();
        break;
      case 7:
        if (c && c->cb->on_writable) c->cb->on_writable(c->arg, cs);
        break;
      case 8: {
        static const uint32_t kStatus[] = {0, 200, 403, 401, 500, 302, 503, 200};
        uint32_t status = kStatus[byte() % 8];
        std::string_view raw = bytes(byte());
        UnaryCallout* u = nullptr;
        for (auto& x : state().unary)
          if (!x->over) {
            u = x.get();
            break;
          }
        if (!u) break;
        Fields fields;
        std::string_view body;
        split_answer(raw, &fields, &body);
        std::vector<sy_header_t> h;
        for (const auto& [n, v] : fields) h.push_back({str(n), str(v)});
        sy_callout_response_t r{};
        r.size = sizeof r;
        r.status = status;
        r.headers = h.data();
        r.header_count = h.size();
        r.body = str(body);
        if (!status) r.failure = str("reset");
        u->over = true;
        u->fn(u->arg, &r);
        break;
      }
    }
  }
}

Loaded load_with_configs(sy_module_entry_fn entry, const char* const* configs, size_t count) {
  Loaded m;
  void* data = nullptr;
  m.filter = load(entry, &data);
  FUZZ_CHECK(m.filter);
  for (size_t i = 0; i < count; ++i) {
    sy_error_t err{};
    std::string_view json(configs[i]);
    m.configs.push_back(m.filter->on_config_create(data, str(json), &err));
    if (!m.configs.back()) std::fprintf(stderr, "config %zu refused: %s\n", i, err.message);
    FUZZ_CHECK(m.configs.back());
  }
  return m;
}

void fuzz_one_stream(const Loaded& m, const uint8_t* data, size_t size) {
  if (size < 2) return;
  begin();
  default_stream();
  void* filter = m.filter->on_stream_create(m.configs[data[0] % m.configs.size()], stream_handle());
  FUZZ_CHECK(filter);
  StreamDriver stream(m.filter, filter, data[1]);
  run_ops(stream, data + 2, size - 2);
  stream.finish();
  // An HTTP callout neither answered nor cancelled would run its FN on the destroyed filter.
  for (const auto& u : state().unary) FUZZ_CHECK(u->over);
  state().unary.clear();
}

}  // namespace fuzzhost
