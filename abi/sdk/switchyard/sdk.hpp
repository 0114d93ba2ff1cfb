// Switchyard C++ SDK: header-only C++20 wrappers over the C ABI in <switchyard/module.h>.
//
// A module written with it is a set of classes derived from sy::sdk::HttpFilter, one
// sy::sdk::FilterFactory per class, and one SY_SDK_MODULE(...) line:
//
//   struct AddHeader : sy::sdk::HttpFilter {
//     sy_filter_status_t on_response_headers(bool) override {
//       response_headers().set("x-demo", "hello");
//       return SY_CONTINUE;
//     }
//   };
//   SY_SDK_MODULE("demo", "1.0.0", sy::sdk::FilterFactory<AddHeader>("demo"))
//
// Nothing C++ crosses the boundary: every callback the host sees is a static function of this
// header that catches exceptions, counts them in the module's `callback_exceptions` counter,
// logs them and answers the stream with a 500 while that is still possible.
//
// Views (std::string_view) returned by Headers and Body are borrowed from the host: they stay
// valid until the header block or body is next changed, or the callback returns. Copy what you
// keep. Every wrapper must be used inside a callback of its stream, on the stream's worker.
#pragma once

#include <switchyard/module.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

// Config readers (sy::sdk::json): nested values and the flat-object helpers.
#include "json.hpp"

// Everything below is hidden: a module exports its stamp and entry function only, and hidden
// symbols are never made STB_GNU_UNIQUE, which would stop glibc from ever unloading the module
// (and so break hot swap) even when the module is built without -fno-gnu-unique.
#pragma GCC visibility push(hidden)

namespace sy::sdk {

// ---- The host and the module ------------------------------------------------------------

namespace detail {
// One copy per loaded generation: each generation is its own dlopen of its own file.
inline const sy_host_t* g_host = nullptr;
inline sy_module_t* g_module = nullptr;
inline uint32_t g_exceptions_metric = 0;
inline bool g_have_exceptions_metric = false;
}  // namespace detail

// The host's function table, set when the host calls the module's entry function.
inline const sy_host_t* host() { return detail::g_host; }
// This generation's module handle (for logging and metrics).
inline sy_module_t* module() { return detail::g_module; }

inline sy_str_t to_str(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view to_view(sy_str_t s) {
  return s.ptr != nullptr ? std::string_view(s.ptr, s.len) : std::string_view();
}

// The module's own `config:` block (its `modules:` entry) as JSON, "{}" when it has none; nullopt
// on a host before ABI 1.2. Valid until on_unload.
inline std::optional<std::string_view> module_config() {
  if (host() == nullptr || !SY_HAS_SLOT(host(), sy_host_t, module_config)) return std::nullopt;
  sy_str_t v{};
  if (host()->module_config(module(), &v) != SY_OK) return std::nullopt;
  return to_view(v);
}

// Writes MESSAGE (truncated to fit) into a config or load error.
inline void set_error(sy_error_t* err, std::string_view message) {
  if (err == nullptr) return;
  size_t n = std::min(message.size(), sizeof(err->message) - 1);
  std::memcpy(err->message, message.data(), n);
  err->message[n] = '\0';
}

// ---- Logging (any thread) ---------------------------------------------------------------

inline void log(sy_log_level_t level, std::string_view message) {
  if (host() != nullptr) host()->log(module(), level, to_str(message));
}

// printf-style; formats only when the host would keep the line.
__attribute__((format(printf, 2, 3))) inline void logf(sy_log_level_t level, const char* fmt, ...) {
  if (host() == nullptr || !host()->log_enabled(level)) return;
  char small[512];
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (size_t(n) < sizeof small) {
    log(level, std::string_view(small, size_t(n)));
    return;
  }
  std::string big(size_t(n), '\0');
  va_start(ap, fmt);
  std::vsnprintf(big.data(), big.size() + 1, fmt, ap);
  va_end(ap);
  log(level, big);
}

// Runs FN on the main thread (ABI 1.2; SY_ERR_UNSUPPORTED before). Any thread. An exception
// from FN is logged and goes no further. FN is destroyed without running when the proxy stops.
inline sy_status_t post_to_main(std::function<void()> fn) {
  if (host() == nullptr || !SY_HAS_SLOT(host(), sy_host_t, post_to_main)) return SY_ERR_UNSUPPORTED;
  using Box = std::function<void()>;
  return host()->post_to_main(
      [](void* arg) {
        std::unique_ptr<Box> f(static_cast<Box*>(arg));
        try {
          (*f)();
        } catch (const std::exception& e) {
          log(SY_LOG_ERROR, std::string("a task posted to the main thread threw: ") + e.what());
        } catch (...) {
          log(SY_LOG_ERROR, "a task posted to the main thread threw");
        }
      },
      [](void* arg) { delete static_cast<Box*>(arg); }, new Box(std::move(fn)));
}

// ---- Metrics (any thread; exported as module.<module>.<name>) ---------------------------

struct Label {
  std::string_view name;
  std::string_view value;
};

class Metric {
 public:
  // Defines (or finds, when already defined with the same kind and labels) a metric.
  static std::optional<Metric> define(sy_metric_kind_t kind, std::string_view name,
                                      std::span<const Label> labels = {}) {
    std::vector<sy_label_t> l;
    l.reserve(labels.size());
    for (const Label& x : labels) l.push_back({to_str(x.name), to_str(x.value)});
    uint32_t id = 0;
    if (host()->metric_define(module(), kind, to_str(name), l.data(), l.size(), &id) != SY_OK)
      return std::nullopt;
    return Metric(id);
  }
  static std::optional<Metric> define(sy_metric_kind_t kind, std::string_view name,
                                      std::initializer_list<Label> labels) {
    return define(kind, name, std::span<const Label>(labels.begin(), labels.size()));
  }

  uint32_t id() const { return id_; }
  sy_status_t add(int64_t delta = 1) const { return host()->metric_add(module(), id_, delta); }
  sy_status_t set(int64_t value) const { return host()->metric_set(module(), id_, value); }
  sy_status_t record(uint64_t value) const { return host()->metric_record(module(), id_, value); }
  std::optional<int64_t> get() const {
    int64_t v = 0;
    if (host()->metric_get(module(), id_, &v) != SY_OK) return std::nullopt;
    return v;
  }

 private:
  explicit Metric(uint32_t id) : id_(id) {}
  uint32_t id_;
};

// ---- Headers and bodies -----------------------------------------------------------------

struct Header {
  std::string_view name;
  std::string_view value;
};

// One header block of a stream (request or response headers or trailers).
class Headers {
 public:
  Headers(sy_stream_t* s, sy_header_kind_t kind) : s_(s), kind_(kind) {}

  // The INDEX-th value of NAME (names are case-insensitive).
  std::optional<std::string_view> get(std::string_view name, size_t index = 0) const {
    sy_str_t v{};
    if (host()->header_get(s_, kind_, to_str(name), index, &v) != SY_OK) return std::nullopt;
    return to_view(v);
  }
  std::vector<std::string_view> get_all(std::string_view name) const {
    std::vector<std::string_view> out;
    size_t n = count(name);
    out.reserve(n);
    for (size_t i = 0; i < n; ++i)
      if (auto v = get(name, i)) out.push_back(*v);
    return out;
  }
  // Number of values of NAME.
  size_t count(std::string_view name) const {
    return name.empty() ? 0 : host()->header_count(s_, kind_, to_str(name));
  }
  // Number of headers in the block.
  size_t size() const { return host()->header_count(s_, kind_, sy_str_t{"", 0}); }

  sy_status_t set(std::string_view name, std::string_view value) const {
    return host()->header_set(s_, kind_, to_str(name), to_str(value));
  }
  sy_status_t add(std::string_view name, std::string_view value) const {
    return host()->header_add(s_, kind_, to_str(name), to_str(value));
  }
  sy_status_t remove(std::string_view name) const {
    return host()->header_remove(s_, kind_, to_str(name));
  }

  // Calls FN(name, value) for each header in order; FN may return false to stop early.
  template <class Fn>
  void for_each(Fn&& fn) const {
    size_t n = size();
    for (size_t i = 0; i < n; ++i) {
      sy_str_t k{}, v{};
      if (host()->header_at(s_, kind_, i, &k, &v) != SY_OK) break;
      if constexpr (std::is_same_v<std::invoke_result_t<Fn&, std::string_view, std::string_view>,
                                   bool>) {
        if (!fn(to_view(k), to_view(v))) break;
      } else {
        fn(to_view(k), to_view(v));
      }
    }
  }

 private:
  sy_stream_t* s_;
  sy_header_kind_t kind_;
};

// The body bytes of one direction: the current chunk or everything buffered so far.
class Body {
 public:
  Body(sy_stream_t* s, sy_direction_t dir, sy_body_part_t part) : s_(s), dir_(dir), part_(part) {}

  // Empty when there is no body (yet).
  std::string_view view() const {
    sy_str_t out{};
    if (host()->body_get(s_, dir_, part_, &out) != SY_OK) return {};
    return to_view(out);
  }
  size_t size() const { return view().size(); }
  sy_status_t replace(std::string_view data) const {
    return host()->body_replace(s_, dir_, part_, to_str(data));
  }
  sy_status_t append(std::string_view data) const {
    return host()->body_append(s_, dir_, part_, to_str(data));
  }
  sy_status_t prepend(std::string_view data) const {
    return host()->body_prepend(s_, dir_, part_, to_str(data));
  }
  // Removes the first N bytes.
  sy_status_t drain(size_t n) const { return host()->body_drain(s_, dir_, part_, n); }

 private:
  sy_stream_t* s_;
  sy_direction_t dir_;
  sy_body_part_t part_;
};

// ---- Callouts (ABI 1.2) ------------------------------------------------------------------

namespace detail {
inline std::vector<sy_header_t> c_headers(std::span<const Header> headers) {
  std::vector<sy_header_t> h;
  h.reserve(headers.size());
  for (const Header& x : headers) h.push_back({to_str(x.name), to_str(x.value)});
  return h;
}
}  // namespace detail

// A unary callout that can be cancelled (http_callout_start). FN runs once on the worker with
// the reply or a failure, never before this returns and never after http_callout_cancel.
inline sy_status_t http_callout_start(sy_stream_t* s, sy_worker_t* w, std::string_view cluster,
                                      std::span<const Header> headers, std::string_view body,
                                      uint64_t timeout_ms, sy_callout_fn fn, void* arg,
                                      sy_callout_t** out) {
  if (!SY_HAS_SLOT(host(), sy_host_t, http_callout_start)) return SY_ERR_UNSUPPORTED;
  auto h = detail::c_headers(headers);
  return host()->http_callout_start(s, w, to_str(cluster), h.data(), h.size(), to_str(body),
                                    timeout_ms, fn, arg, out);
}
inline sy_status_t http_callout_cancel(sy_callout_t* c) {
  if (!SY_HAS_SLOT(host(), sy_host_t, http_callout_cancel)) return SY_ERR_UNSUPPORTED;
  return host()->http_callout_cancel(c);
}

// A streaming callout (stream_callout_*): derive, override the events you need, start() it.
// Events run on the worker it was started on; a callout started from a stream is that
// stream's, and ends with it silently (no event). Destroying the object resets a callout that
// is still open, so keeping it as a member of an HttpFilter is safe: the handle stays valid
// until the stream's filters are destroyed. An exception from an event is counted and logged
// like a filter callback's, and resets the callout (no further event).
class CalloutStream {
 public:
  CalloutStream() = default;
  CalloutStream(const CalloutStream&) = delete;
  CalloutStream& operator=(const CalloutStream&) = delete;
  virtual ~CalloutStream() { reset(); }

  // From a stream's callbacks (S) or from a worker (W): see stream_callout_start. HEADERS need
  // :method and :path. SY_ERR_NOT_FOUND: no such cluster.
  sy_status_t start(sy_stream_t* s, sy_worker_t* w, std::string_view cluster,
                    std::span<const Header> headers, uint64_t timeout_ms = 0) {
    if (!SY_HAS_SLOT(host(), sy_host_t, stream_callout_start)) return SY_ERR_UNSUPPORTED;
    if (cs_ != nullptr) return SY_ERR_WRONG_PHASE;
    static const sy_stream_callout_callbacks_t kEvents = {sizeof(sy_stream_callout_callbacks_t),
                                                          &headers_cb,
                                                          &data_cb,
                                                          &trailers_cb,
                                                          &complete_cb,
                                                          &failure_cb,
                                                          &writable_cb};
    auto h = detail::c_headers(headers);
    return host()->stream_callout_start(s, w, to_str(cluster), h.data(), h.size(), timeout_ms,
                                        &kEvents, this, &cs_);
  }
  sy_status_t start(sy_stream_t* s, sy_worker_t* w, std::string_view cluster,
                    std::initializer_list<Header> headers, uint64_t timeout_ms = 0) {
    return start(s, w, cluster, std::span<const Header>(headers.begin(), headers.size()),
                 timeout_ms);
  }

  // SY_OK, or SY_ABOVE_HIGH_WATERMARK (taken; wait for on_writable before sending more).
  sy_status_t send(std::string_view data, bool end_stream = false) {
    if (cs_ == nullptr) return SY_ERR_WRONG_PHASE;
    return host()->stream_callout_send_data(cs_, to_str(data), end_stream);
  }
  sy_status_t send_trailers(std::span<const Header> trailers) {
    if (cs_ == nullptr) return SY_ERR_WRONG_PHASE;
    auto t = detail::c_headers(trailers);
    return host()->stream_callout_send_trailers(cs_, t.data(), t.size());
  }
  sy_status_t pause_reading(bool paused) {
    if (cs_ == nullptr) return SY_ERR_WRONG_PHASE;
    return host()->stream_callout_pause_reading(cs_, paused);
  }
  // Ends it now; no event after this returns.
  void reset() {
    sy_callout_stream_t* cs = cs_;
    cs_ = nullptr;
    if (cs != nullptr) host()->stream_callout_reset(cs);
  }
  // Started and not yet ended (by an event or reset). A stream's callout whose stream ended
  // still counts as open here; its calls return SY_ERR_STALE.
  bool open() const { return cs_ != nullptr; }

 protected:
  virtual void on_headers(std::span<const sy_header_t> /*headers*/, bool /*end_stream*/) {}
  virtual void on_data(std::string_view /*data*/, bool /*end_stream*/) {}
  virtual void on_trailers(std::span<const sy_header_t> /*trailers*/) {}
  virtual void on_complete() {}
  virtual void on_failure(sy_callout_failure_t /*reason*/, std::string_view /*details*/) {}
  virtual void on_writable() {}

 private:
  template <class Fn>
  static void guard(void* arg, const char* where, Fn&& fn) noexcept {
    auto* self = static_cast<CalloutStream*>(arg);
    try {
      fn(*self);
    } catch (const std::exception& e) {
      self->failed(where, e.what());
    } catch (...) {
      self->failed(where, "a non-standard exception");
    }
  }
  void failed(const char* where, const char* what) noexcept;
  static void headers_cb(void* a, sy_callout_stream_t*, const sy_header_t* h, size_t n, bool end) {
    guard(a, "on_headers", [&](CalloutStream& c) { c.on_headers({h, n}, end); });
  }
  static void data_cb(void* a, sy_callout_stream_t*, sy_str_t d, bool end) {
    guard(a, "on_data", [&](CalloutStream& c) { c.on_data(to_view(d), end); });
  }
  static void trailers_cb(void* a, sy_callout_stream_t*, const sy_header_t* t, size_t n) {
    guard(a, "on_trailers", [&](CalloutStream& c) { c.on_trailers({t, n}); });
  }
  // The handle is invalid once these return: forget it first, so reset() in them is a no-op.
  static void complete_cb(void* a, sy_callout_stream_t*) {
    static_cast<CalloutStream*>(a)->cs_ = nullptr;
    guard(a, "on_complete", [&](CalloutStream& c) { c.on_complete(); });
  }
  static void failure_cb(void* a, sy_callout_stream_t*, sy_callout_failure_t r, sy_str_t d) {
    static_cast<CalloutStream*>(a)->cs_ = nullptr;
    guard(a, "on_failure", [&](CalloutStream& c) { c.on_failure(r, to_view(d)); });
  }
  static void writable_cb(void* a, sy_callout_stream_t*) {
    guard(a, "on_writable", [&](CalloutStream& c) { c.on_writable(); });
  }

  sy_callout_stream_t* cs_ = nullptr;
};

// ---- TCP proxy connections (network filters) ---------------------------------------------

// A network filter's view of its connection: a plain handle, cheap to copy. Inside on_data the
// current bytes are readable and replaceable; the rest works from any callback on the
// connection's worker until on_connection_destroy (ABI 1.2). FILTER is what the filter's
// on_connection_create returned: the host knows the filter by it (resume).
class Conn {
 public:
  Conn(sy_conn_t* c, void* filter) : c_(c), filter_(filter) {}
  sy_conn_t* handle() const { return c_; }

  std::optional<std::string_view> data(sy_direction_t dir) const {
    sy_str_t out{};
    if (host()->conn_data_get(c_, dir, &out) != SY_OK) return std::nullopt;
    return to_view(out);
  }
  sy_status_t replace(sy_direction_t dir, std::string_view bytes) const {
    return host()->conn_data_replace(c_, dir, to_str(bytes));
  }
  sy_status_t inject(sy_direction_t dir, std::string_view bytes) const {
    return host()->conn_inject(c_, dir, to_str(bytes));
  }
  sy_status_t close() const { return host()->conn_close(c_); }
  std::optional<std::string_view> attribute(std::string_view path) const {
    sy_str_t out{};
    if (host()->conn_attribute_get(c_, to_str(path), &out) != SY_OK) return std::nullopt;
    return to_view(out);
  }

  // ABI 1.2. Passes on what this filter holds in DIR after on_data returned
  // SY_STOP_AND_WATERMARK.
  sy_status_t resume(sy_direction_t dir) const {
    if (!SY_HAS_SLOT(host(), sy_host_t, conn_resume)) return SY_ERR_UNSUPPORTED;
    return host()->conn_resume(c_, filter_, dir);
  }
  // ABI 1.2. Stops (PAUSED true) or restarts reading from SIDE (SY_REQUEST: the client).
  sy_status_t pause_reading(sy_direction_t side, bool paused) const {
    if (!SY_HAS_SLOT(host(), sy_host_t, conn_pause_reading)) return SY_ERR_UNSUPPORTED;
    return host()->conn_pause_reading(c_, side, paused);
  }
  // ABI 1.2. Half-close: DIR's destination gets a FIN; the other direction keeps flowing.
  sy_status_t shutdown_write(sy_direction_t dir) const {
    if (!SY_HAS_SLOT(host(), sy_host_t, conn_shutdown_write)) return SY_ERR_UNSUPPORTED;
    return host()->conn_shutdown_write(c_, dir);
  }
  // ABI 1.2. The connection's worker, for timers and posts that come back to it.
  sy_worker_t* worker() const {
    if (!SY_HAS_SLOT(host(), sy_host_t, conn_worker)) return nullptr;
    return host()->conn_worker(c_);
  }

 private:
  sy_conn_t* c_;
  void* filter_;
};

// ---- HTTP filters -----------------------------------------------------------------------

template <class F, class Config>
class FilterFactory;

// Base class of a per-stream filter. Override the callbacks you need; the others are no-ops
// (and FilterFactory leaves them out of the C table, so the host does not even call them).
// A filter object lives from the stream's creation to its destruction, on the stream's worker.
class HttpFilter {
 public:
  HttpFilter() = default;
  HttpFilter(const HttpFilter&) = delete;
  HttpFilter& operator=(const HttpFilter&) = delete;
  virtual ~HttpFilter() = default;

  virtual sy_filter_status_t on_request_headers(bool /*end_stream*/) { return SY_CONTINUE; }
  virtual sy_filter_status_t on_request_body(bool /*end_stream*/) { return SY_CONTINUE; }
  virtual sy_filter_status_t on_request_trailers() { return SY_CONTINUE; }
  virtual sy_filter_status_t on_response_headers(bool /*end_stream*/) { return SY_CONTINUE; }
  virtual sy_filter_status_t on_response_body(bool /*end_stream*/) { return SY_CONTINUE; }
  virtual sy_filter_status_t on_response_trailers() { return SY_CONTINUE; }
  // Access-log time: stream info and metadata are final.
  virtual void on_stream_complete() {}
  // ABI 1.2: the stream's write buffer toward the client (SY_RESPONSE) or the upstream
  // (SY_REQUEST) passed the high watermark (ABOVE) or drained below the low one.
  virtual void on_watermark(sy_direction_t /*dir*/, bool /*above*/) {}

  // Accessors; valid inside this filter's callbacks only.
  Headers request_headers() const { return {stream_, SY_REQUEST_HEADERS}; }
  Headers response_headers() const { return {stream_, SY_RESPONSE_HEADERS}; }
  Headers request_trailers() const { return {stream_, SY_REQUEST_TRAILERS}; }
  Headers response_trailers() const { return {stream_, SY_RESPONSE_TRAILERS}; }
  Body request_body(sy_body_part_t part = SY_BODY_CHUNK) const {
    return {stream_, SY_REQUEST, part};
  }
  Body response_body(sy_body_part_t part = SY_BODY_CHUNK) const {
    return {stream_, SY_RESPONSE, part};
  }

  sy_status_t resume(sy_direction_t dir) const { return host()->resume(stream_, dir); }
  // Done with DIR's body on this stream (ABI 1.1): no more body callbacks for DIR, and the
  // host may keep Content-Length and pass the body through.
  sy_status_t skip_body(sy_direction_t dir) const {
    if (!SY_HAS_SLOT(host(), sy_host_t, skip_body)) return SY_ERR_UNSUPPORTED;
    return host()->skip_body(stream_, dir);
  }
  sy_status_t inject(sy_direction_t dir, std::string_view data, bool end_stream) const {
    return host()->inject_data(stream_, dir, to_str(data), end_stream);
  }
  sy_status_t local_reply(uint32_t status, std::string_view body, std::string_view details,
                          std::span<const Header> headers) const {
    std::vector<sy_header_t> h;
    h.reserve(headers.size());
    for (const Header& x : headers) h.push_back({to_str(x.name), to_str(x.value)});
    return host()->send_local_reply(stream_, status, h.data(), h.size(), to_str(body),
                                    to_str(details));
  }
  sy_status_t local_reply(uint32_t status, std::string_view body = {},
                          std::string_view details = {},
                          std::initializer_list<Header> headers = {}) const {
    return local_reply(status, body, details,
                       std::span<const Header>(headers.begin(), headers.size()));
  }

  // Ends the stream abruptly (ABI 1.2): HTTP/2 RST_STREAM, HTTP/1.1 connection closed; DETAILS
  // goes to the access log with flag FR. The way to fail closed once the response has started.
  sy_status_t stream_reset(std::string_view details) const {
    if (!SY_HAS_SLOT(host(), sy_host_t, stream_reset)) return SY_ERR_UNSUPPORTED;
    return host()->stream_reset(stream_, to_str(details));
  }
  // Envoy's short response-flag name ("UAEX", "RLSE", "RL", "FI", "DI") for the access log;
  // set it before send_local_reply. SY_ERR_UNSUPPORTED on a host before it.
  sy_status_t set_response_flag(std::string_view flag) const {
    if (!SY_HAS_SLOT(host(), sy_host_t, set_response_flag)) return SY_ERR_UNSUPPORTED;
    return host()->set_response_flag(stream_, to_str(flag));
  }

  sy_stream_t* stream() const { return stream_; }
  sy_stream_id_t id() const { return host()->stream_id(stream_); }
  // A copy: the host may reuse the memory behind an attribute view on the next call.
  std::optional<std::string> attribute(std::string_view path) const {
    sy_str_t v{};
    if (host()->attribute_get(stream_, to_str(path), &v) != SY_OK) return std::nullopt;
    return std::string(to_view(v));
  }
  sy_status_t metadata_set(std::string_view ns, std::string_view key,
                           std::string_view value) const {
    return host()->metadata_set(stream_, to_str(ns), to_str(key), to_str(value));
  }
  std::optional<std::string> metadata_get(std::string_view ns, std::string_view key) const {
    sy_str_t v{};
    if (host()->metadata_get(stream_, to_str(ns), to_str(key), &v) != SY_OK) return std::nullopt;
    return std::string(to_view(v));
  }
  // Filter state: a per-stream value later filters and the access log (`fields:`) can read.
  sy_status_t filter_state_set(std::string_view key, std::string_view value) const {
    return host()->filter_state_set(stream_, to_str(key), to_str(value));
  }
  std::optional<std::string> filter_state_get(std::string_view key) const {
    sy_str_t v{};
    if (host()->filter_state_get(stream_, to_str(key), &v) != SY_OK) return std::nullopt;
    return std::string(to_view(v));
  }

  // Typed metadata (ABI 1.2; SY_ERR_UNSUPPORTED or nullopt on older hosts). OBJECT is a JSON
  // object: set replaces the namespace NS, merge replaces only the members OBJECT has.
  sy_status_t metadata_ns_set(std::string_view ns, std::string_view object) const {
    if (!SY_HAS_SLOT(host(), sy_host_t, metadata_ns_set)) return SY_ERR_UNSUPPORTED;
    return host()->metadata_ns_set(stream_, to_str(ns), to_str(object));
  }
  sy_status_t metadata_ns_merge(std::string_view ns, std::string_view object) const {
    if (!SY_HAS_SLOT(host(), sy_host_t, metadata_ns_merge)) return SY_ERR_UNSUPPORTED;
    return host()->metadata_ns_merge(stream_, to_str(ns), to_str(object));
  }
  // Namespace NS of SOURCE (dynamic metadata, or the route's, listener's or cluster's
  // `metadata:`) as a JSON object.
  std::optional<std::string> metadata_ns_get(
      std::string_view ns, sy_metadata_source_t source = SY_METADATA_DYNAMIC) const {
    if (!SY_HAS_SLOT(host(), sy_host_t, metadata_ns_get)) return std::nullopt;
    sy_str_t v{};
    if (host()->metadata_ns_get(stream_, source, to_str(ns), &v) != SY_OK) return std::nullopt;
    return std::string(to_view(v));
  }
  // An attribute with its type (ABI 1.2): see sy_value_type_t for what NUMBER and BYTES hold.
  struct Value {
    sy_value_type_t type;
    int64_t number;
    std::string bytes;
  };
  std::optional<Value> attribute_typed(std::string_view path) const {
    if (!SY_HAS_SLOT(host(), sy_host_t, attribute_get_typed)) return std::nullopt;
    sy_value_t v{};
    v.size = sizeof v;
    if (host()->attribute_get_typed(stream_, to_str(path), &v) != SY_OK) return std::nullopt;
    return Value{v.type, v.number, std::string(to_view(v.bytes))};
  }
  // A body for a message that had none (ABI 1.2): this filter's held bodiless headers go on as
  // the head of a message with a body, which the filter then injects (host inject_data, the
  // last piece with end_stream). Static, with the stream S a task, timer or callout callback
  // acting for this filter receives: it is never called from inside this filter's callbacks.
  static sy_status_t continue_headers_with_body(sy_stream_t* s, sy_direction_t dir) {
    if (!SY_HAS_SLOT(host(), sy_host_t, continue_headers_with_body)) return SY_ERR_UNSUPPORTED;
    return host()->continue_headers_with_body(s, dir);
  }
  // The body taken over (ABI 1.2): this filter's held headers go on without end of stream,
  // and from then on the direction's body is what the filter injects (the last piece with
  // end_stream, or resume() to send the original's trailers); the original's chunks keep
  // reaching its body callbacks, held until it drains them. Static, like the call above.
  static sy_status_t continue_headers_take_body(sy_stream_t* s, sy_direction_t dir) {
    if (!SY_HAS_SLOT(host(), sy_host_t, continue_headers_take_body)) return SY_ERR_UNSUPPORTED;
    return host()->continue_headers_take_body(s, dir);
  }
  // How many bytes a filter may hold per direction before the host answers 413 / 500.
  std::optional<uint64_t> buffer_limit() const {
    if (!SY_HAS_SLOT(host(), sy_host_t, buffer_limit)) return std::nullopt;
    return host()->buffer_limit(stream_);
  }
  void log(sy_log_level_t level, std::string_view message) const { sdk::log(level, message); }

 private:
  template <class, class>
  friend class FilterFactory;

  sy_stream_t* stream_ = nullptr;
  const char* factory_ = "";
  int depth_ = 0;                 // callbacks of this filter on the stack
  bool broken_ = false;           // threw once: user code is not called again on this stream
  bool destroy_pending_ = false;  // on_stream_destroy arrived from inside one of its callbacks
};

namespace detail {

template <class C>
concept ParsableConfig = requires(std::string_view json, std::string* err) {
  { C::parse(json, err) } -> std::same_as<std::optional<C>>;
};

// The object handed out for a stream whose filter constructor threw: the stream is answered
// with a 500 from its request headers callback, and nothing else of the filter runs.
inline char g_failed_stream = 0;
inline void* failed_stream() { return &g_failed_stream; }

inline void count_exception(const char* factory, const char* where, const char* what) noexcept {
  if (g_have_exceptions_metric) host()->metric_add(module(), g_exceptions_metric, 1);
  try {
    logf(SY_LOG_ERROR, "filter '%s': %s threw: %s", factory, where, what);
  } catch (...) {  // out of memory for a long message: the count is what matters
  }
}

}  // namespace detail

inline void CalloutStream::failed(const char* where, const char* what) noexcept {
  detail::count_exception("callout stream", where, what);
  reset();
}

// ---- Queues a worker owns (ABI 1.2) -----------------------------------------------------

namespace detail {

// What queue_register_on_worker registered, by (worker index, queue id). Workers read it and
// any thread may register, hence the lock.
struct WorkerQueues {
  std::mutex mu;
  std::map<std::pair<int32_t, uint32_t>, std::function<void(uint32_t)>> ready;
};
inline WorkerQueues g_worker_queues;

// The descriptor's on_queue_ready: runs what was registered for this worker and queue.
inline void worker_queue_ready(void* /*module_data*/, sy_worker_t* w, uint32_t id) noexcept {
  std::function<void(uint32_t)> fn;
  {
    std::lock_guard<std::mutex> lock(g_worker_queues.mu);
    auto it = g_worker_queues.ready.find({host()->worker_index(w), id});
    if (it != g_worker_queues.ready.end()) fn = it->second;
  }
  if (!fn) return;
  try {
    fn(id);
  } catch (const std::exception& e) {
    count_exception("worker queue", "on_queue_ready", e.what());
  } catch (...) {
    count_exception("worker queue", "on_queue_ready", "a non-standard exception");
  }
}

}  // namespace detail

// Registers the queue NAME with worker W's own handle (stream_worker(s) in a filter callback,
// or the handle a post_to_worker task receives) so that READY(queue_id) runs on that worker
// each time the queue gets data (the descriptor's on_queue_ready, which SY_SDK_MODULE
// installs). *ID (may be null) receives the id for queue_dequeue. Registering again replaces
// READY; the last registration of NAME, by anyone, decides who is told. A swapped-in
// generation registers again to be told. Data enqueued while this call runs may be told to
// no one: it stays queued, and the next enqueue's notification finds it.
inline sy_status_t queue_register_on_worker(sy_worker_t* w, std::string_view name,
                                            std::function<void(uint32_t queue_id)> ready,
                                            uint32_t* id = nullptr) {
  if (w == nullptr || !ready) return SY_ERR_INVALID;
  uint32_t qid = 0;
  sy_status_t st = host()->queue_register(module(), w, to_str(name), &qid);
  if (st != SY_OK) return st;
  {
    std::lock_guard<std::mutex> lock(detail::g_worker_queues.mu);
    detail::g_worker_queues.ready[{host()->worker_index(w), qid}] = std::move(ready);
  }
  if (id != nullptr) *id = qid;
  return SY_OK;
}

namespace detail {

// Answers S with a 500 if the response has not started. SY_STOP when it did, so nothing else
// runs for this phase; otherwise the data goes on unchanged, since the ABI offers no reset and
// stopping would stall the stream until a timeout.
inline sy_filter_status_t answer_500(sy_stream_t* s) {
  static constexpr std::string_view kBody = "internal error in a module filter\n";
  if (s != nullptr && host()->send_local_reply(s, 500, nullptr, 0, to_str(kBody),
                                               to_str("module_exception")) == SY_OK)
    return SY_STOP;
  return SY_CONTINUE;
}

// True when F declares its own MEMBER: &F::m then has type "pointer to member of F" rather than
// of HttpFilter. (Comparing the pointers themselves is unspecified for virtual functions.)
constexpr bool overrides(auto member, auto base) {
  return !std::is_same_v<decltype(member), decltype(base)>;
}

inline bool on_load(sy_module_t* m, void** module_data, sy_error_t* /*err*/) {
  *module_data = nullptr;
  uint32_t id = 0;
  if (host()->metric_define(m, SY_COUNTER, to_str("callback_exceptions"), nullptr, 0, &id) ==
      SY_OK) {
    g_exceptions_metric = id;
    g_have_exceptions_metric = true;
  }
  return true;
}

// The descriptor and filter tables of a module, built once per generation in its entry.
struct ModuleTables {
  template <class... Fs>
  ModuleTables(const char* name, const char* version, const Fs&... factories)
      : filters{factories.table()...} {
    for (const sy_http_filter_t& f : filters) list.push_back(&f);
    list.push_back(nullptr);
    desc.size = sizeof desc;
    desc.abi_major = SY_ABI_MAJOR;
    desc.abi_minor = SY_ABI_MINOR;
    desc.name = name;
    desc.version = version;
    desc.on_load = &on_load;
    desc.http_filters = list.data();
    desc.on_queue_ready = &worker_queue_ready;
  }
  ModuleTables(const ModuleTables&) = delete;
  ModuleTables& operator=(const ModuleTables&) = delete;

  std::vector<sy_http_filter_t> filters;
  std::vector<const sy_http_filter_t*> list;
  sy_module_descriptor_t desc{};
};

inline const sy_module_descriptor_t* enter(const sy_host_t* h, sy_module_t* m,
                                           const ModuleTables& tables) {
  g_host = h;
  g_module = m;
  return &tables.desc;
}

}  // namespace detail

// Builds the C table of one HTTP filter factory named NAME (the `filter:` in the config) whose
// streams get a `new F(config)` (or `new F()` when F takes no config). CONFIG is made from the
// filter's JSON config: by `static std::optional<Config> Config::parse(std::string_view json,
// std::string* err)` when it has one (nullopt rejects the config with ERR as the message), else
// by constructing it from the JSON text (the default, std::string, keeps the text).
template <class F, class Config = std::string>
class FilterFactory {
  static_assert(std::is_base_of_v<HttpFilter, F>, "F must derive from sy::sdk::HttpFilter");
  static_assert(detail::ParsableConfig<Config> || std::is_constructible_v<Config, std::string_view>,
                "Config needs a static parse(std::string_view, std::string*) -> "
                "std::optional<Config>, or a constructor from std::string_view");

 public:
  constexpr explicit FilterFactory(const char* name) : name_(name) {}

  sy_http_filter_t table() const {
    name_for_logs() = name_;
    sy_http_filter_t t{};
    t.size = sizeof t;
    t.name = name_;
    t.on_config_create = &config_create;
    t.on_config_destroy = &config_destroy;
    t.on_stream_create = &stream_create;
    // Always set: it is where a stream whose filter could not be constructed gets its 500.
    t.on_request_headers = &request_headers;
    using detail::overrides;
    using H = HttpFilter;
    if (overrides(&F::on_request_body, &H::on_request_body)) t.on_request_body = &request_body;
    if (overrides(&F::on_request_trailers, &H::on_request_trailers))
      t.on_request_trailers = &request_trailers;
    if (overrides(&F::on_response_headers, &H::on_response_headers))
      t.on_response_headers = &response_headers;
    if (overrides(&F::on_response_body, &H::on_response_body)) t.on_response_body = &response_body;
    if (overrides(&F::on_response_trailers, &H::on_response_trailers))
      t.on_response_trailers = &response_trailers;
    if (overrides(&F::on_stream_complete, &H::on_stream_complete))
      t.on_stream_complete = &stream_complete;
    if (overrides(&F::on_watermark, &H::on_watermark)) t.on_watermark = &watermark;
    t.on_stream_destroy = &stream_destroy;
    return t;
  }

 private:
  static const char*& name_for_logs() {
    static const char* name = "";
    return name;
  }

  static void* config_create(void* /*module_data*/, sy_str_t json, sy_error_t* err) noexcept {
    try {
      if constexpr (detail::ParsableConfig<Config>) {
        std::string why;
        std::optional<Config> c = Config::parse(to_view(json), &why);
        if (!c) {
          set_error(err, why.empty() ? std::string_view("invalid config") : why);
          return nullptr;
        }
        return new Config(std::move(*c));
      } else {
        return new Config(to_view(json));
      }
    } catch (const std::exception& e) {
      detail::count_exception(name_for_logs(), "config parsing", e.what());
      set_error(err, std::string("config parsing threw: ") + e.what());
    } catch (...) {
      detail::count_exception(name_for_logs(), "config parsing", "a non-standard exception");
      set_error(err, "config parsing threw a non-standard exception");
    }
    return nullptr;
  }
  static void config_destroy(void* config) noexcept { delete static_cast<Config*>(config); }

  static void* stream_create(void* config, sy_stream_t* /*s*/) noexcept {
    try {
      F* f;
      if constexpr (std::is_constructible_v<F, const Config&>) {
        f = new F(*static_cast<const Config*>(config));
      } else {
        f = new F();
      }
      static_cast<HttpFilter*>(f)->factory_ = name_for_logs();
      return f;
    } catch (const std::exception& e) {
      detail::count_exception(name_for_logs(), "the filter constructor", e.what());
    } catch (...) {
      detail::count_exception(name_for_logs(), "the filter constructor",
                              "a non-standard exception");
    }
    return detail::failed_stream();
  }

  // Runs FN on the filter behind P with S as its stream, turning an exception into a count, a
  // log line and (when REPLY and still possible) a 500.
  template <class Fn>
  static sy_filter_status_t run(void* p, sy_stream_t* s, const char* where, bool reply,
                                Fn&& fn) noexcept {
    if (p == detail::failed_stream()) return SY_CONTINUE;
    F* f = static_cast<F*>(p);
    HttpFilter& b = *f;
    if (b.broken_) return SY_CONTINUE;
    // Callbacks may nest (a local reply can complete the stream from inside a callback), so
    // the previous stream handle is restored rather than cleared.
    sy_stream_t* saved = b.stream_;
    b.stream_ = s;
    ++b.depth_;
    sy_filter_status_t r;
    try {
      r = fn(*f);
    } catch (const std::exception& e) {
      r = fail(b, s, where, reply, e.what());
    } catch (...) {
      r = fail(b, s, where, reply, "a non-standard exception");
    }
    b.stream_ = saved;
    --b.depth_;
    if (b.depth_ == 0 && b.destroy_pending_) delete f;
    return r;
  }

  static sy_filter_status_t fail(HttpFilter& b, sy_stream_t* s, const char* where, bool reply,
                                 const char* what) noexcept {
    b.broken_ = true;
    detail::count_exception(b.factory_, where, what);
    return reply ? detail::answer_500(s) : SY_CONTINUE;
  }

  static sy_filter_status_t request_headers(void* p, sy_stream_t* s, bool end) noexcept {
    if (p == detail::failed_stream()) return detail::answer_500(s);
    return run(p, s, "on_request_headers", true, [&](F& f) { return f.on_request_headers(end); });
  }
  static sy_filter_status_t request_body(void* p, sy_stream_t* s, bool end) noexcept {
    return run(p, s, "on_request_body", true, [&](F& f) { return f.on_request_body(end); });
  }
  static sy_filter_status_t request_trailers(void* p, sy_stream_t* s) noexcept {
    return run(p, s, "on_request_trailers", true, [&](F& f) { return f.on_request_trailers(); });
  }
  static sy_filter_status_t response_headers(void* p, sy_stream_t* s, bool end) noexcept {
    return run(p, s, "on_response_headers", true, [&](F& f) { return f.on_response_headers(end); });
  }
  static sy_filter_status_t response_body(void* p, sy_stream_t* s, bool end) noexcept {
    return run(p, s, "on_response_body", true, [&](F& f) { return f.on_response_body(end); });
  }
  static sy_filter_status_t response_trailers(void* p, sy_stream_t* s) noexcept {
    return run(p, s, "on_response_trailers", true, [&](F& f) { return f.on_response_trailers(); });
  }
  static void stream_complete(void* p, sy_stream_t* s) noexcept {
    run(p, s, "on_stream_complete", false, [&](F& f) {
      f.on_stream_complete();
      return SY_CONTINUE;
    });
  }
  static void watermark(void* p, sy_stream_t* s, sy_direction_t dir, bool above) noexcept {
    run(p, s, "on_watermark", false, [&](F& f) {
      f.on_watermark(dir, above);
      return SY_CONTINUE;
    });
  }
  static void stream_destroy(void* p) noexcept {
    if (p == detail::failed_stream()) return;
    F* f = static_cast<F*>(p);
    if (static_cast<HttpFilter*>(f)->depth_ > 0) {
      static_cast<HttpFilter*>(f)->destroy_pending_ = true;
      return;
    }
    delete f;
  }

  const char* name_;
};

}  // namespace sy::sdk

#pragma GCC visibility pop

// Writes the module's stamp, its descriptor (listing the FilterFactory objects given, in order)
// and its entry function. Use once per module, at file scope:
//   SY_SDK_MODULE("name", "1.0.0", sy::sdk::FilterFactory<MyFilter, MyConfig>("my_filter"))
// The descriptor's on_load defines the module's `callback_exceptions` counter.
#define SY_SDK_MODULE(NAME, VERSION, ...)                                            \
  SY_MODULE_STAMP(NAME, VERSION);                                                    \
  SY_MODULE_ENTRY(sy_sdk_host_, sy_sdk_module_) {                                    \
    try {                                                                            \
      static const ::sy::sdk::detail::ModuleTables sy_sdk_tables_(                   \
          NAME, VERSION __VA_OPT__(, ) __VA_ARGS__);                                 \
      return ::sy::sdk::detail::enter(sy_sdk_host_, sy_sdk_module_, sy_sdk_tables_); \
    } catch (...) {                                                                  \
      return nullptr;                                                                \
    }                                                                                \
  }

// The drop-aware tasks and timers (ABI 1.2) live in their own header, which needs all of the
// above; included here so that <switchyard/sdk.hpp> stays the one include a module needs.
#include <switchyard/tasks.hpp>
