// One HTTP stream's ext_proc state: its side stream to the processor and both directions'
// progress through headers, body and trailers (docs/ext_proc.md has the state rules).
#pragma once

#include <envoy/service/ext_proc/v3/external_processor.pb.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <switchyard/grpc_framing.hpp>

#include "ext_proc.h"
#include "wire.h"

namespace extproc {

namespace pb = envoy::service::ext_proc::v3;

class Filter;
class Observer;

// What a direction has sent and is waiting for, in order.
enum class Msg { kHeaders, kBody, kTrailers };

// A FIFO that allocates nothing until its first push: libstdc++'s std::deque allocates two
// blocks as it is constructed, and a stream has six queues of which most stay empty (a
// headers-only stream uses one). Held by pointer, it also keeps a Filter small enough for
// malloc's per-thread cache (up to 1 KiB).
template <class T>
class Fifo {
 public:
  bool empty() const { return !q_ || q_->empty(); }
  T& front() { return q_->front(); }
  const T& front() const { return q_->front(); }
  T& back() { return q_->back(); }
  void pop_front() { q_->pop_front(); }
  void push_back(T v) {
    if (!q_) q_ = std::make_unique<std::deque<T>>();
    q_->push_back(std::move(v));
  }
  bool contains(const T& v) const {
    return q_ && std::find(q_->begin(), q_->end(), v) != q_->end();
  }

 private:
  std::unique_ptr<std::deque<T>> q_;
};

// The messages a direction waits for answers to, in order: one or two at a time except in a
// STREAMED run, so the first few are held inline (no allocation for most streams) and only
// the rest go to a heap queue. Inline entries are always older than queued ones: a message is
// held inline only while the queue is empty.
class Pending {
 public:
  bool empty() const { return n_ == 0 && rest_.empty(); }
  Msg front() const { return n_ ? inline_[head_] : rest_.front(); }
  void pop_front() {
    if (n_ == 0) {
      rest_.pop_front();
      return;
    }
    head_ = (head_ + 1) % kInline;
    --n_;
  }
  void push_back(Msg m) {
    if (n_ < kInline && rest_.empty()) {
      inline_[(head_ + n_) % kInline] = m;
      ++n_;
      return;
    }
    rest_.push_back(m);
  }
  bool contains(Msg m) const {
    for (size_t i = 0; i < n_; ++i)
      if (inline_[(head_ + i) % kInline] == m) return true;
    return rest_.contains(m);
  }

 private:
  static constexpr size_t kInline = 4;
  Msg inline_[kInline] = {};
  size_t head_ = 0, n_ = 0;
  Fifo<Msg> rest_;
};

struct Direction {
  Filter* f = nullptr;
  sy_direction_t dir = SY_REQUEST;
  int header_mode = kSend, body_mode = kNone, trailer_mode = kSkip;
  Pending pending;           // sent, answer not yet received
  bool started = false;      // its headers callback ran
  bool held = false;         // the filter holds the direction (returned a stop status)
  bool headers_out = false;  // its headers went on to the next filter
  bool header_end = false;   // the message has no body
  bool body_end = false;     // the whole body is in the filter's buffer
  bool body_sent = false;    // the (buffered) body message went out
  bool trailers_seen = false;
  bool trailers_sent = false;
  bool replaced = false;  // CONTINUE_AND_REPLACE: nothing more of it goes to the processor
  bool finished = false;  // the end of this direction passed the filter
  bool timeout_overridden = false;
  size_t sent_body_len = 0;  // bytes of the body message (BUFFERED_PARTIAL: a prefix)
  // STREAMED: a copy of each chunk sent and not yet answered, in order; nullopt for a chunk
  // answered in place (the whole body was already held when the headers were answered).
  Fifo<std::optional<std::string>> chunks;
  bool streaming = false;      // STREAMED and the headers went on: chunks flow one by one
  int inplace = 0;             // STREAMED, held bytes sent as one chunk: 1 sent, 2 answered
  size_t inplace_done = 0;     // STREAMED: processed bytes at the head of what the host holds
  size_t inplace_sent = 0;     // STREAMED: bytes at the head of what the host holds that went out
  Fifo<size_t> inplace_lens;   // STREAMED: sizes of the held chunks sent, not answered
  bool ever_streamed = false;  // STREAMED: chunks went one by one at some point
  bool eos_sent = false;       // a body message with end_of_stream went out
  size_t inflight = 0;         // STREAMED: bytes of chunks sent and not yet answered
  // FULL_DUPLEX_STREAMED (duplex.cc): the body goes to the processor as it comes, and the body
  // that goes on is the processor's streamed_response chunks.
  bool duplex = false;          // this message's body is processed full duplex
  bool taken = false;           // its headers went on; the filter owns the body (take_body)
  bool duplex_done = false;     // the processor's body (or the trailers) ended the direction
  sy_timer_t* timer = nullptr;  // the message timeout (duplex: the stream idle timeout)
  // The message timeout's timer outlives the answer it waited for, as cancelling it and making
  // another for the next message costs more than letting it run (wait_answer): TIMER_AT is when
  // it fires and WAIT_UNTIL the deadline of the answer awaited now (0: none), both in
  // steady-clock milliseconds; REUSED says it waits for a later message than it was made for.
  uint64_t timer_at = 0, wait_until = 0;
  bool reused = false;
};

class Filter {
 public:
  Filter(const Config* cfg, sy_stream_t* s);
  ~Filter();

  sy_filter_status_t on_headers(sy_direction_t dir, bool end_stream);
  sy_filter_status_t on_body(sy_direction_t dir, bool end_stream);
  sy_filter_status_t on_trailers(sy_direction_t dir);
  void on_complete();

  // Side stream events (callout callbacks).
  void side_headers(const sy_header_t* h, size_t n, bool end_stream);
  void side_data(std::string_view data, bool end_stream);
  void side_trailers(const sy_header_t* h, size_t n);
  void side_done(bool failed, std::string_view why);
  void side_writable();
  void message_timeout(Direction& d);
  void on_watermark(sy_direction_t dir, bool above);
  // FULL_DUPLEX_STREAMED, header mode SKIP: the headers go on unanswered (a timer, as the
  // headers callback cannot let them go itself).
  void duplex_take(Direction& d);

  sy_callout_stream_t* cs = nullptr;

 private:
  // EXPECT_ANSWER false: a FULL_DUPLEX_STREAMED body chunk, answered by no message of its own.
  bool send(Direction& d, Msg kind, Request& req, bool expect_answer = true);
  // What every message carries: protocol_config (first), attributes, forwarded metadata.
  void prepare(Direction& d, pb::ProcessingRequest& req);
  std::vector<sy_header_t> side_stream_headers() const;
  bool open_side_stream();
  // observability_mode (observe.cc): send and go on, nothing waits for an answer.
  bool observe(Direction& d, Request& req);
  sy_filter_status_t observe_body(Direction& d, bool end_stream);
  void send_headers(Direction& d, bool end_stream);
  void send_body(Direction& d, bool end_stream, size_t limit);
  void send_trailers(Direction& d);
  // Sends what is due for D and says whether D may go on now (nothing held back).
  bool advance(Direction& d);
  bool body_wanted(const Direction& d) const;
  bool streamed(const Direction& d) const;
  // The host knows SY_STOP_AND_WATERMARK (ABI 1.2).
  bool watermark_ok() const;
  // STREAMED, once the headers are answered: sends what was held and lets the headers go.
  void start_streaming(Direction& d);
  // STREAMED: sends what the host holds beyond what was sent as one more chunk answered in
  // place; false when there is nothing new.
  bool send_held(Direction& d);
  // send_body_without_waiting_for_header_response applies: body goes out before the headers'
  // answer.
  bool early_body(const Direction& d) const;
  sy_filter_status_t stream_chunk(Direction& d, bool end_stream);
  // Outside D's own callback: lets D go on if the filter holds it and nothing is due.
  void release_if_ready(Direction& d);
  // ---- FULL_DUPLEX_STREAMED (duplex.cc) ----
  bool duplex_wanted(const Direction& d, bool end_stream) const;
  sy_filter_status_t duplex_headers(Direction& d);
  sy_filter_status_t duplex_body(Direction& d, bool end_stream);
  sy_filter_status_t duplex_trailers(Direction& d);
  // Sends what the host holds for D to the processor (while the side stream takes it), then
  // the end of the body or the trailers message.
  void duplex_flush(Direction& d);
  // The processor's answers for a duplex direction; true when R was one (handled).
  bool duplex_answer(Direction& d, Msg kind, const pb::ProcessingResponse& r);
  void duplex_headers_answer(Direction& d, const pb::CommonResponse& c);
  // Processing ended early (the processor closed the call): the original body passes as is.
  void duplex_passthrough(Direction& d);
  void duplex_idle(Direction& d);
  uint64_t answer_timeout(const Direction& d) const;
  void handle_response(const pb::ProcessingResponse& r);
  void handle_common(Direction& d, Msg kind, const pb::CommonResponse& c);
  void handle_immediate(const pb::ImmediateResponse& r);
  void apply_mode_override(const pb::ProcessingResponse& r, Direction& d);
  void apply_dynamic_metadata(const google::protobuf::Struct& md);
  void start_timer(Direction& d, uint64_t ms);
  void stop_timer(Direction& d);
  // A message went out and its answer is awaited for MS: reuses D's timer when it fires no
  // later than that (message_timeout then waits out the rest), else starts one.
  void wait_answer(Direction& d, uint64_t ms);
  // D's answers all came: its timer is left to run out harmlessly (not in duplex, whose idle
  // timer has its own rules).
  void answered(Direction& d);
  // The side stream is over for good: processing ends, both directions go on unprocessed.
  void stop_processing();
  // Fails the HTTP stream with STATUS (or lets it go on under failure_mode_allow).
  void fail(uint32_t status, const std::string& details, bool allow_override = true);
  void local_reply(uint32_t status, const std::vector<std::pair<std::string, std::string>>& h,
                   std::string_view body, const std::string& details);
  // Once nothing more is due either way (processing is complete), closes the side stream.
  void close_if_done();
  void count_closed();
  sy_header_kind_t headers_kind(const Direction& d) const;
  sy_header_kind_t trailers_kind(const Direction& d) const;

  const Config* cfg_;
  sy_stream_t* s_;
  GrpcTarget target_;
  std::vector<std::pair<std::string, std::string>> extra_metadata_;
  bool failure_mode_allow_;
  Direction d_[2];
  sy::sdk::grpc::Deframer deframer_;
  bool side_started_ = false;  // a side stream was opened
  bool side_over_ = false;     // processing has ended (closed, failed, or given up)
  bool first_message_ = true;
  bool failed_ = false;
  bool closed_counted_ = false;
  bool ended_ = false;  // a local reply or reset ended the HTTP stream
  bool request_attrs_sent_ = false;
  int in_callback_ = -1;      // the direction whose filter callback is running, or -1
  bool side_full_ = false;    // the side stream's send queue is above its high watermark
  bool paused_side_ = false;  // the side stream's reading is paused (a peer's buffer is full)
  bool write_above_[2] = {false, false};  // on_watermark, per direction
  std::string grpc_status_;
  // metadata_options in force: the route's, else the filter's.
  const std::vector<std::string>* forwarding_;
  const std::vector<std::string>* forwarding_typed_;
  const std::vector<std::string>* receiving_;
  Observer* obs_ = nullptr;  // observability_mode's side stream
  bool obs_opened_ = false;
};

}  // namespace extproc
