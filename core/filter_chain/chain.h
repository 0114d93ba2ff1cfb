// Drives a stream's module filters: request phases in order, response phases in reverse, with
// pause/resume, per-filter body buffering, and the state the host table reads and writes.
#pragma once

#include <switchyard/module.h>

#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/filter_chain/factory.h"
#include "core/filter_chain/metadata.h"
#include "core/filter_chain/stream_registry.h"
#include "core/http/headers.h"
#include "core/log/response_flag.h"
#include "core/net/socket.h"

namespace sy::filters {

// What the chain needs from the stream that owns it (implemented by server::Stream).
class ChainSink {
 public:
  virtual ~ChainSink() = default;
  // Phases leaving the last filter of each direction. BODY_LENGTH: kKeepLength when no filter
  // can change the body (the headers' framing stands), kUnknownLength when one may (send
  // chunked), else the exact length (the whole body was held and is known).
  static constexpr int64_t kKeepLength = -1;
  static constexpr int64_t kUnknownLength = -2;
  virtual void request_headers_out(bool end_stream, int64_t body_length) = 0;
  virtual void request_data_out(std::string& data, bool end_stream) = 0;
  virtual void request_trailers_out() = 0;
  virtual void response_headers_out(bool end_stream, int64_t body_length) = 0;
  virtual void response_data_out(std::string& data, bool end_stream) = 0;
  virtual void response_trailers_out() = 0;
  // Flow control of the sources while filters hold data.
  virtual void pause_source(sy_direction_t dir) = 0;
  virtual void resume_source(sy_direction_t dir) = 0;
  // Host-table services.
  virtual bool local_reply_from_filter(int status, const http::HeaderMap& headers,
                                       std::string_view body, std::string details) = 0;
  virtual bool response_started() const = 0;
  virtual void clear_route_cache() = 0;
  virtual bool set_upstream_override(std::string_view host) = 0;
  virtual bool attribute(std::string_view path, std::string* out) const = 0;
  virtual const std::string& route_name() const = 0;
  virtual uv_loop_t* loop() const = 0;
  virtual int worker_index() const = 0;
  virtual uint64_t buffer_limit() const = 0;
  // The listener's limits.headers and limits.header_bytes: header_set and header_add refuse to
  // take a header block past them (0: no limit).
  struct HeaderLimits {
    uint32_t count = 0;
    uint32_t bytes = 0;
  };
  virtual HeaderLimits header_limits() const { return {}; }
  // Host stream_reset (since ABI 1.2): end the stream abruptly once the calling filter returns,
  // with DETAILS in the access log. False when the stream has already ended.
  virtual bool reset_from_filter(std::string details) { return false; }
  // Host set_response_flag (since ABI 1.2): FLAG, unless the stream already has one. False
  // when the stream has already ended.
  virtual bool set_response_flag(log::ResponseFlag flag) { return false; }
  // Host metadata_ns_get (since ABI 1.2): the `metadata:` block of the stream's route, listener
  // or cluster (namespace -> JSON object text), or null when there is none (yet).
  virtual const std::map<std::string, std::string>* config_metadata(
      sy_metadata_source_t source) const {
    return nullptr;
  }
  // The pseudo-headers of DIR's header block as the stream has them (:method, :path,
  // :authority and :scheme; :status), appended to OUT. The chain asks only when a filter
  // needs them (FilterChain::headers).
  virtual void pseudo_headers(sy_direction_t dir, std::vector<http::Header>& out) const {}
  // What keeps the stream's module generations loaded (the runtime snapshot that holds the
  // filter factories): a post or callout for the stream holds it until it has run.
  virtual std::shared_ptr<const void> generations() const { return nullptr; }
};

// Every stream has one, with or without filters: an empty chain hands each phase straight to
// the sink, so the stream has one code path, and costs next to nothing.
class FilterChain {
 public:
  using Factories = std::vector<std::shared_ptr<HttpFilterFactory>>;
  // An empty chain; start() gives it its filters.
  explicit FilterChain(ChainSink* sink) : sink_(sink) {}
  // A chain with FACTORIES' filters whose stream has the id ID (tests pick their ids). It keeps
  // the factories itself, so a test may pass a temporary list.
  FilterChain(ChainSink* sink, const Factories& factories, const std::string& route_name,
              sy_stream_id_t id)
      : sink_(sink), own_factories_(factories) {
    add_filters(own_factories_, route_name, id);
  }
  ~FilterChain();
  FilterChain(const FilterChain&) = delete;
  FilterChain& operator=(const FilterChain&) = delete;

  // Creates the stream's filters (on_stream_create) from FACTORIES, each with its per-route
  // config for ROUTE_NAME (or left out, when that route disables it), and gives the stream an
  // id of worker WORKER_INDEX when it has filters (nothing else uses one; made when first
  // asked for). Once, before any phase. The chain does not hold the factories: they must
  // outlive it, as the stream's runtime snapshot does (so a stream pins its module
  // generations once, not per filter).
  void start(const Factories& factories, const std::string& route_name, int worker_index);
  bool empty() const { return entries_.empty(); }
  // The stream is over: it leaves the registry, its streaming callouts end, its timers are
  // dropped and its filters destroyed (on_stream_destroy), then the callouts' handles freed.
  // The destructor does it too; a stream calls it while it is still whole, since filters may
  // call the host from on_stream_destroy.
  void destroy();

  // Inputs: the stream calls these as the codec delivers each phase.
  void decode_headers(bool end_stream);
  void decode_data(std::string data, bool end_stream);
  void decode_trailers();
  void encode_headers(bool end_stream);
  void encode_data(std::string data, bool end_stream);
  void encode_trailers();
  // The stream is over: on_stream_complete for every filter (then destroy on deletion).
  void complete();
  // Access-log time: complete(), and from now on nothing reaches the filters: posts to the
  // stream are stale, resumes do nothing, its streaming callouts end silently (as Envoy's
  // async streams do).
  void end();
  // Stop calling filters (a local reply or a reset ended the stream).
  void halt() { halted_ = true; }
  // A filter answered the request: the request phases stop, the response phases still run.
  void halt_request() { request_halted_ = true; }
  // True once a response has entered the chain (encode_headers).
  bool response_entered() const { return response_entered_; }
  // Runs FN as soon as no filter callback or task is on the stack (now, if none is).
  void when_idle(std::function<void()> fn);
  // Runs FN (a filter's task or timer) as the code of the filter at POSITION (kNoFilter: of
  // no filter) would run in a callback: inject_data enters after that filter, route_config is
  // its own, and what FN causes waits as it would in a callback.
  static constexpr uint32_t kNoFilter = UINT32_MAX;
  void run_as(uint32_t position, const std::function<void()>& fn);
  // The position of the filter whose callback (or task) runs now, or kNoFilter.
  uint32_t current_position() const;
  // An attribute as the calling filter reads it: plugin_name is that filter's name (the
  // factory `filter:` chose), every other path is the stream's (ChainSink::attribute).
  bool attribute(std::string_view path, std::string* out) const;
  // The chain whose filter callback or task runs on this thread right now, if any.
  static FilterChain* active();
  // The module of the filter at POSITION (null for kNoFilter): who a task posted for that
  // filter from outside any module call belongs to, for the crash marker.
  const ModuleIdentity* module_at(uint32_t position) const;

  // --- state the host table works on ---
  // The header block KIND. The pseudo-headers go into it (first, as Envoy's filters see them)
  // only when WITH_PSEUDO asks for them, the first time a filter names one or reads the block
  // as a whole: most filters never do, and making them as strings for every request, only for
  // the stream to read them back, was much of what a filter cost.
  // Inline: every header call of every filter asks.
  http::HeaderMap* headers(sy_header_kind_t kind, bool with_pseudo = true) {
    switch (kind) {
      case SY_REQUEST_HEADERS:
        if (with_pseudo && pseudo_due_[SY_REQUEST]) add_pseudo(SY_REQUEST);
        return &request_headers;
      case SY_REQUEST_TRAILERS:
        return &request_trailers;
      case SY_RESPONSE_HEADERS:
        if (with_pseudo && pseudo_due_[SY_RESPONSE]) add_pseudo(SY_RESPONSE);
        return &response_headers;
      case SY_RESPONSE_TRAILERS:
        return &response_trailers;
    }
    return nullptr;
  }
  // True once DIR's pseudo-headers are in its block: filters may have changed them there, so
  // the stream reads the message's method, path, authority or status back from them. Until
  // then the stream's own values stand.
  bool pseudo_in(sy_direction_t dir) const { return pseudo_in_[dir]; }
  std::string* body(sy_direction_t dir, sy_body_part_t part, size_t** chunk_off);
  sy_status_t resume(sy_direction_t dir);
  // Host continue_headers_with_body: the calling filter's held bodiless headers go on as the
  // head of a message whose body the filter will inject.
  sy_status_t continue_headers_with_body(sy_direction_t dir);
  // Host continue_headers_take_body: the calling filter's held headers go on without end of
  // stream, and the rest of the direction is the filter's (owned, below).
  sy_status_t continue_headers_take_body(sy_direction_t dir);
  sy_status_t inject(sy_direction_t dir, std::string_view data, bool end_stream);
  ChainSink* sink() { return sink_; }
  // The stream's id: made on first use (most streams' filters never ask for it).
  sy_stream_id_t id() const {
    if (id_worker_ >= 0) {
      id_ = next_stream_id(id_worker_);
      id_worker_ = -1;
    }
    return id_;
  }
  // The id as a module learns it (host stream_id). The first call enters the stream in the
  // registry, where posts from any thread look it up: a module can only post to an id it was
  // given, so a stream whose id no filter asked for is never entered, and its worker takes no
  // lock for it. After unpublish() the id stays stale.
  sy_stream_id_t published_id();
  // The stream ends: posts to its id find nothing from now on.
  void unpublish() {
    if (registry_ == Registry::kPublished) unregister_stream(id());
    registry_ = Registry::kGone;
  }
  void* current_route_config() const;
  std::map<std::string, MetadataNamespace> metadata;  // dynamic metadata, by namespace
  std::map<std::string, std::string> filter_state;
  // Header blocks (the stream reads them when the phase leaves the chain).
  http::HeaderMap request_headers, request_trailers, response_headers, response_trailers;
  bool has_request_trailers = false, has_response_trailers = false;
  // Timers owned by the stream's filters; dropped (DROP runs) when the stream ends, before
  // on_stream_destroy.
  struct StreamTimer;
  std::list<StreamTimer> timers;  // the node is the timer: one allocation per timer set
  sy_stream_t* handle() { return reinterpret_cast<sy_stream_t*>(this); }
  static FilterChain* from(sy_stream_t* s) { return reinterpret_cast<FilterChain*>(s); }
  // True when some filter of this stream may still call for DIR's body (it has body callbacks
  // and has not stepped out with skip_body). A count kept as filters are made and step out:
  // the stream asks for every chunk of every body.
  bool any_body_filter(sy_direction_t dir) const { return body_filters_[dir] != 0; }
  // A streaming callout was opened for this stream (callout_host.cc): its end must reach it.
  void callout_opened() { callouts_ = true; }
  // The stream's write buffer toward DIR's destination crossed a watermark: tell the filters
  // (on_watermark, since ABI 1.2), once per crossing.
  void watermark(sy_direction_t dir, bool above);
  // A filter changed held body bytes outside the chain's own steps (body_drain from a task, say):
  // recount them for the watermarks.
  void held_edited(sy_direction_t dir) { held_changed(dir); }
  // skip_body from the filter whose callback runs now.
  sy_status_t skip_body(sy_direction_t dir);
  // True when body data in DIR would pass every filter untouched (no body callbacks, nothing
  // held): the stream then writes it straight through, without a copy. Inline up to the walk
  // over the filters' holds, which only a chain with filters and no body callbacks needs.
  bool body_passthrough(sy_direction_t dir) const {
    if (!headers_out_[dir] || halted_ || body_filters_[dir]) return false;
    return !holds(dir);
  }

 private:
  struct Entry {
    HttpFilterFactory* factory = nullptr;  // kept alive by the chain's owner (see start())
    void* filter = nullptr;                // null: the filter stays out of this stream
    void* route_config = nullptr;
    struct Dir {
      bool paused = false;     // SY_STOP: nothing until resume
      bool buffering = false;  // SY_STOP_AND_BUFFER: body callbacks go on
      bool watermark = false;  // with buffering, SY_STOP_AND_WATERMARK: no limit, the peer pauses
      bool headers_held = false;
      bool headers_end = false;
      std::string held;
      size_t chunk_off = 0;
      bool end_held = false;
      bool trailers_held = false;
      bool skip_body = false;  // the filter stepped out of this body (host skip_body)
      // continue_headers_take_body: the filter owns the rest of this direction. Its body
      // callbacks get every chunk (held, as under a watermark hold) and nothing of the
      // original passes it; what goes on is what it injects. OWNED_END: the filter ended the
      // direction (inject_data with end of stream, or resume); later input is dropped.
      bool owned = false;
      bool owned_end = false;
    } dir[2];
  };

  // Puts DIR's pseudo-headers into its header block (headers()).
  void add_pseudo(sy_direction_t dir);
  void add_filters(const Factories& factories, const std::string& route_name, sy_stream_id_t id);
  Entry* entry_at(sy_direction_t dir, size_t k);  // k-th in that direction's iteration order
  void run_headers(sy_direction_t dir, size_t from, bool end_stream, int64_t body_length);
  void run_data(sy_direction_t dir, size_t from, std::string data, bool end_stream);
  void run_trailers(sy_direction_t dir, size_t from);
  void release(sy_direction_t dir, size_t k);
  // resume() of an owned direction: the held trailers (or else the end of stream) go on.
  void end_owned(sy_direction_t dir, size_t k);
  size_t index_of(sy_direction_t dir, const Entry* e) const;
  sy_filter_status_t call_headers(sy_direction_t dir, Entry& e, bool end_stream);
  sy_filter_status_t call_body(sy_direction_t dir, Entry& e, bool end_stream);
  sy_filter_status_t call_trailers(sy_direction_t dir, Entry& e);
  void emit_headers(sy_direction_t dir, bool end_stream, int64_t body_length);
  void emit_data(sy_direction_t dir, std::string& data, bool end_stream);
  void emit_trailers(sy_direction_t dir);
  bool over_limit(sy_direction_t dir, Entry::Dir& d);
  void held_changed(sy_direction_t dir);
  // The end of a Scope: the stream's last callback left, so what waited for that runs.
  void leave() {
    if (--depth_ == 0 && (idle_fn_ || complete_pending_)) run_idle();
  }
  void run_idle();
  // Some filter holds DIR: paused, buffering or owning it. Only a filter that returned
  // something other than SY_CONTINUE in DIR, or took its body over, can (may_hold_): the
  // stream asks for every body chunk, and most streams never get that far.
  bool holds(sy_direction_t dir) const { return may_hold_[dir] && any_holds(dir); }
  bool any_holds(sy_direction_t dir) const;
  // The entry vectors of ended chains, kept for the next chains this thread starts (see
  // chain.cc).
  struct SpareEntries;
  static SpareEntries& spare_entries();
  // Saves what the host's calls refer to now, and restores it: a callback may run inside
  // another's (a resume from a callback runs the next filters).
  struct Scope {
    FilterChain* chain;
    FilterChain* prev_active;
    Entry* current;
    sy_direction_t dir;
    std::string* body;
    size_t* chunk_off;
    explicit Scope(FilterChain* c);
    ~Scope();
  };

  ChainSink* sink_;
  Factories own_factories_;  // only for the tests' constructor
  std::vector<Entry> entries_;
  // Per direction: does any filter have a headers callback; how many filters still take body
  // callbacks (any_body_filter). A phase no filter acts on goes straight to the sink.
  bool headers_cb_[2] = {false, false};
  uint32_t body_filters_[2] = {0, 0};
  bool may_hold_[2] = {false, false};  // see holds()
  bool callouts_ = false;              // callout_opened()
  mutable sy_stream_id_t id_ = 0;
  mutable int id_worker_ = -1;  // >= 0: id_ is still to be made, on this worker (id())
  bool destroyed_ = false;
  bool stopped(sy_direction_t dir) const {
    return halted_ || (dir == SY_REQUEST && request_halted_);
  }
  bool halted_ = false;
  bool request_halted_ = false;
  bool response_entered_ = false;
  std::function<void()> idle_fn_;
  bool completed_ = false;
  enum class Registry : uint8_t { kPrivate, kPublished, kGone };
  Registry registry_ = Registry::kPrivate;
  int depth_ = 0;  // filter callbacks on the stack
  bool complete_pending_ = false;
  // During a callback: which entry and which body the host's body_* calls mean.
  Entry* current_ = nullptr;
  sy_direction_t current_dir_ = SY_REQUEST;
  std::string* cur_body_ = nullptr;
  size_t* cur_chunk_off_ = nullptr;
  size_t held_bytes_[2] = {0, 0};
  size_t counted_bytes_[2] = {0, 0};  // what of held_bytes_ the overload count holds
  bool source_paused_[2] = {false, false};
  bool headers_out_[2] = {false, false};
  bool pseudo_due_[2] = {false, false};  // DIR's headers entered, their pseudo-headers not made
  bool pseudo_in_[2] = {false, false};
  bool write_above_[2] = {false, false};  // what on_watermark last said, per direction
};

// A one-shot timer a filter set on its stream (host.cc creates it, the chain owns it). Its
// handle is TOKEN, looked up on use: a timer that fired or was dropped is no longer found,
// so cancelling it then does nothing. The destructor (host.cc) forgets the token.
struct FilterChain::StreamTimer {
  explicit StreamTimer(uv_loop_t* loop) : timer(loop) {}
  ~StreamTimer();
  uint64_t token = 0;
  net::Timer timer;
  sy_stream_task_fn fn;
  sy_drop_fn drop;
  void* arg;
  FilterChain* chain;
  uint32_t position;            // the filter that set it
  const ModuleIdentity* owner;  // the module whose code FN and DROP are (crash marker)
};

}  // namespace sy::filters
