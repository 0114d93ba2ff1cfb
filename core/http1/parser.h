// Strict HTTP/1.x message parser over llhttp, for requests (server side) and responses (client).
#pragma once

#include <llhttp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/http/headers.h"

namespace sy::http1 {

// The start line and headers of one message, with the framing llhttp worked out.
struct MessageHead {
  // Requests.
  std::string method;
  std::string target;
  // Responses.
  int status = 0;
  std::string reason;
  // Both.
  int major = 1, minor = 1;
  http::HeaderMap headers;
  bool keep_alive = true;
  bool chunked = false;
  std::optional<uint64_t> content_length;
  bool upgrade = false;     // Upgrade requested (request) or 101 (response)
  bool end_stream = false;  // HTTP/2: the HEADERS frame ended the stream (no body follows)
};

class ParserHandler {
 public:
  virtual ~ParserHandler() = default;
  // Headers are complete. Return 0 to go on, 1 to say the message has no body (a response to
  // HEAD), or -1 to stop with an error (set via Parser::fail()).
  virtual int on_head(MessageHead& head) = 0;
  virtual void on_body(const char* data, size_t len) = 0;
  // Trailers of a chunked message; called before on_complete when there are any.
  virtual void on_trailers(http::HeaderMap& trailers) = 0;
  // The message is complete; the parser pauses here (see Parser::resume).
  virtual void on_complete() = 0;
};

struct Limits {
  uint32_t header_bytes = 64 * 1024;
  uint32_t headers = 100;
};

class Parser {
 public:
  enum class Status {
    kOk,       // all input consumed, wants more
    kPaused,   // a message completed; `consumed` bytes used, call resume() before feeding more
    kUpgrade,  // the message switched protocols; bytes after `consumed` belong to the tunnel
    kError,    // malformed: answer `error_status` and close
  };
  struct Result {
    Status status = Status::kOk;
    size_t consumed = 0;
  };

  Parser(llhttp_type_t type, ParserHandler* handler, Limits limits = {});
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  Result feed(const char* data, size_t len);
  // The peer closed: completes a close-delimited body. True when that ended a message cleanly.
  bool finish();
  // Continues after kPaused, or after kUpgrade when the peer declined the switch.
  void resume();
  // The next response belongs to a HEAD request (responses only).
  void expect_head_response(bool v) { head_response_ = v; }

  // Set by a handler (or the parser) to refuse the message.
  void fail(int http_status, std::string reason);
  int error_status() const { return error_status_; }
  const std::string& error_reason() const { return error_reason_; }
  // Inside a message (after its first byte, before its end).
  bool in_message() const { return in_message_; }
  bool head_done() const { return head_done_; }
  void set_limits(Limits l) { limits_ = l; }

 private:
  static int cb_message_begin(llhttp_t* p);
  static int cb_url(llhttp_t* p, const char* at, size_t len);
  static int cb_status(llhttp_t* p, const char* at, size_t len);
  static int cb_header_field(llhttp_t* p, const char* at, size_t len);
  static int cb_header_value(llhttp_t* p, const char* at, size_t len);
  static int cb_header_value_complete(llhttp_t* p);
  static int cb_headers_complete(llhttp_t* p);
  static int cb_body(llhttp_t* p, const char* at, size_t len);
  static int cb_message_complete(llhttp_t* p);
  static int cb_chunk_header(llhttp_t* p);
  static Parser* self(llhttp_t* p) { return static_cast<Parser*>(p->data); }

  bool count_bytes(size_t n);
  // Raw-byte checks llhttp does not make: bare LF and obs-fold in the head.
  bool scan_head(const char* data, size_t len);

  llhttp_t llhttp_;
  llhttp_settings_t settings_;
  ParserHandler* handler_;
  Limits limits_;
  MessageHead head_;
  http::HeaderMap trailers_;
  std::string field_, value_;
  bool in_value_ = false;
  bool in_message_ = false;
  bool head_done_ = false;
  bool head_response_ = false;
  bool upgraded_ = false;  // stopped at an upgrade; resume() goes back to HTTP
  uint32_t head_bytes_ = 0;
  char prev_ = '\n';  // last byte of the head seen, for the bare-LF check
  bool line_start_ = true;
  bool head_text_ = false;   // the scanner saw a non-empty line of this head
  bool interim_ = false;     // paused after a 1xx interim response (feed() goes on by itself)
  uint32_t scan_bytes_ = 0;  // head bytes the scanner has seen
  int error_status_ = 0;
  std::string error_reason_;
};

}  // namespace sy::http1
