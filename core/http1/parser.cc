// Strict HTTP/1.x parser: llhttp in strict mode plus the head checks it leaves to its caller.
#include "core/http1/parser.h"

#include <cstring>

namespace sy::http1 {
namespace {

// The fields a message head has room for from its start: a browser's request carries about a
// dozen, a response fewer, and the proxy adds a few (x-forwarded-for, x-request-id, via). 16
// headers are 1 KiB, which malloc still serves from its per-thread cache.
constexpr size_t kHeadersReserved = 16;

bool valid_value_byte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

// The body framing of a request head, checked before anything acts on the head: llhttp refuses
// a bad Transfer-Encoding only after its headers-complete callback has run, by which time the
// request would be on its way upstream. The only coding accepted is a single "chunked"
// (RFC 9112 §6.1); any other, "gzip, chunked" included, is one the proxy cannot decode or pass
// on faithfully, so it is refused with 501 as nginx and Envoy do. Returns 0 when acceptable.
int check_request_framing(const http::HeaderMap& h, std::string* reason) {
  bool any = false;
  int codings = 0;
  bool only_chunked = true;
  for (const http::Header& x : h) {
    if (x.name != "transfer-encoding") continue;
    any = true;
    http::for_each_token(x.value, [&](std::string_view coding) {
      ++codings;
      only_chunked = only_chunked && http::iequals(coding, "chunked");
      return false;
    });
  }
  if (!any) return 0;
  if (codings != 1 || !only_chunked) {
    *reason = "unsupported transfer-coding (only a single 'chunked' is accepted)";
    return 501;
  }
  if (h.has("content-length")) {
    *reason = "both Transfer-Encoding and Content-Length";
    return 400;
  }
  return 0;
}

}  // namespace

Parser::Parser(llhttp_type_t type, ParserHandler* handler, Limits limits)
    : handler_(handler), limits_(limits) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = cb_message_begin;
  settings_.on_url = cb_url;
  settings_.on_status = cb_status;
  settings_.on_header_field = cb_header_field;
  settings_.on_header_value = cb_header_value;
  settings_.on_header_value_complete = cb_header_value_complete;
  settings_.on_headers_complete = cb_headers_complete;
  settings_.on_body = cb_body;
  settings_.on_message_complete = cb_message_complete;
  settings_.on_chunk_header = cb_chunk_header;
  llhttp_init(&llhttp_, type, &settings_);
  llhttp_.data = this;
}

void Parser::fail(int http_status, std::string reason) {
  if (error_status_ == 0) {
    error_status_ = http_status;
    error_reason_ = std::move(reason);
  }
}

bool Parser::scan_head(const char* data, size_t len) {
  // Only the head is scanned: from the first byte of a message to its empty line. The caller
  // pauses after every message, so a feed that starts outside a head starts a new message.
  // Only a line's first bytes and its end need a look: the first byte other than CR says
  // whether the line folds or has text, and every LF must follow a CR. The bytes between are
  // skipped with memchr, a few instructions per line rather than several per byte.
  const char* p = data;
  const char* end = data + len;
  while (p < end) {
    if (!line_start_) {
      const char* nl = static_cast<const char*>(memchr(p, '\n', size_t(end - p)));
      const char* stop = nl ? nl : end;
      if (stop > p) {
        scan_bytes_ += uint32_t(stop - p);
        prev_ = stop[-1];
        p = stop;
      }
      if (!nl) break;
    }
    char c = *p;
    if (c == '\n') {
      if (prev_ != '\r') {
        fail(400, "bare LF in message head");
        return false;
      }
      // An empty line ends the head only after its start line: empty lines before a request
      // line are allowed (RFC 9112 §2.2) and the head that follows must still be scanned.
      if (line_start_ && head_text_) {
        scan_bytes_ = 0;
        head_text_ = false;
        prev_ = c;
        return true;
      }
      line_start_ = true;
    } else if (c != '\r') {
      if ((c == ' ' || c == '\t') && scan_bytes_ > 0) {
        fail(400, "obsolete line folding in header");
        return false;
      }
      line_start_ = false;
      head_text_ = true;
    }
    ++scan_bytes_;
    prev_ = c;
    ++p;
  }
  return true;
}

Parser::Result Parser::feed(const char* data, size_t len) {
  Result r;
  if (error_status_ != 0) {
    r.status = Status::kError;
    return r;
  }
  llhttp_errno_t err;
  size_t off = 0;
  while (true) {
    if (!head_done_ && !scan_head(data + off, len - off)) {
      r.status = Status::kError;
      return r;
    }
    err = llhttp_execute(&llhttp_, data + off, len - off);
    if (err != HPE_PAUSED || !interim_) break;
    // A 1xx interim response ended (it pauses too): the head after it is scanned like any.
    off = size_t(llhttp_get_error_pos(&llhttp_) - data);
    resume();
    if (off == len) {
      r.consumed = len;
      return r;
    }
  }
  switch (err) {
    case HPE_OK:
      r.consumed = len;
      return r;
    case HPE_PAUSED:
      r.status = Status::kPaused;
      r.consumed = size_t(llhttp_get_error_pos(&llhttp_) - data);
      return r;
    case HPE_PAUSED_UPGRADE:
      upgraded_ = true;
      r.status = Status::kUpgrade;
      r.consumed = size_t(llhttp_get_error_pos(&llhttp_) - data);
      return r;
    case HPE_PAUSED_H2_UPGRADE:
      fail(505, "HTTP/2 prior knowledge is not enabled on this listener");
      break;
    case HPE_INVALID_TRANSFER_ENCODING:
      fail(501, llhttp_get_error_reason(&llhttp_));
      break;
    case HPE_INVALID_VERSION:
      fail(505, llhttp_get_error_reason(&llhttp_));
      break;
    default:
      fail(400, llhttp_get_error_reason(&llhttp_) ? llhttp_get_error_reason(&llhttp_)
                                                  : llhttp_errno_name(err));
      break;
  }
  r.status = Status::kError;
  return r;
}

bool Parser::finish() {
  if (!in_message_) return true;
  llhttp_errno_t err = llhttp_finish(&llhttp_);
  if (err != HPE_OK && err != HPE_PAUSED) return false;
  return !in_message_;
}

void Parser::resume() {
  if (upgraded_) {
    upgraded_ = false;
    llhttp_resume_after_upgrade(&llhttp_);
  } else {
    llhttp_resume(&llhttp_);
  }
  prev_ = '\n';
  line_start_ = true;
  scan_bytes_ = 0;
  head_text_ = false;
  interim_ = false;
  // The next message's head is scanned from its first byte: llhttp only starts it (and
  // cb_message_begin clears this) once it sees that byte, after scan_head's turn.
  head_done_ = false;
}

bool Parser::count_bytes(size_t n) {
  if (head_done_) return true;  // trailers are bounded by the same field checks below
  head_bytes_ += uint32_t(n);
  if (head_bytes_ > limits_.header_bytes) {
    fail(431, "request header section too large");
    return false;
  }
  return true;
}

int Parser::cb_message_begin(llhttp_t* p) {
  Parser* s = self(p);
  s->head_ = MessageHead{};
  // The handler usually moves the headers out (into a stream's chain), so each message starts
  // with an empty map: room for a usual head's fields is made in one allocation here, where
  // growing one field at a time took four allocations and moved every header each time.
  s->head_.headers.reserve(kHeadersReserved);
  s->trailers_.clear();
  s->field_.clear();
  s->value_.clear();
  s->in_value_ = false;
  s->in_message_ = true;
  s->head_done_ = false;
  s->head_bytes_ = 0;
  return 0;
}

int Parser::cb_url(llhttp_t* p, const char* at, size_t len) {
  Parser* s = self(p);
  s->head_.target.append(at, len);
  if (s->head_.target.size() > s->limits_.header_bytes) {
    s->fail(414, "request target too long");
    return -1;
  }
  return s->count_bytes(len) ? 0 : -1;
}

int Parser::cb_status(llhttp_t* p, const char* at, size_t len) {
  Parser* s = self(p);
  s->head_.reason.append(at, len);
  return s->count_bytes(len) ? 0 : -1;
}

int Parser::cb_header_field(llhttp_t* p, const char* at, size_t len) {
  Parser* s = self(p);
  if (s->in_value_) {
    s->field_.clear();
    s->value_.clear();
    s->in_value_ = false;
  }
  s->field_.append(at, len);
  return s->count_bytes(len) ? 0 : -1;
}

int Parser::cb_header_value(llhttp_t* p, const char* at, size_t len) {
  Parser* s = self(p);
  s->in_value_ = true;
  for (size_t i = 0; i < len; ++i) {
    if (!valid_value_byte(static_cast<unsigned char>(at[i]))) {
      s->fail(400, "invalid character in header value");
      return -1;
    }
  }
  s->value_.append(at, len);
  return s->count_bytes(len) ? 0 : -1;
}

int Parser::cb_header_value_complete(llhttp_t* p) {
  Parser* s = self(p);
  std::string& v = s->value_;
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
  // llhttp takes a line that starts with ':' as a field with an empty name; a field name is a
  // token (RFC 9110 §5.1), and forwarded as is it would reach the upstream as a malformed line.
  if (s->field_.empty()) {
    s->fail(400, "empty header name");
    return -1;
  }
  http::HeaderMap& target = s->head_done_ ? s->trailers_ : s->head_.headers;
  if (target.size() >= s->limits_.headers) {
    s->fail(431, "too many headers");
    return -1;
  }
  target.add(s->field_, v);
  s->field_.clear();
  s->value_.clear();
  s->in_value_ = false;
  return 0;
}

int Parser::cb_headers_complete(llhttp_t* p) {
  Parser* s = self(p);
  MessageHead& h = s->head_;
  s->head_done_ = true;
  h.major = p->http_major;
  h.minor = p->http_minor;
  if (h.major != 1) {
    s->fail(505, "unsupported HTTP version");
    return -1;
  }
  if (p->type == HTTP_REQUEST) {
    h.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
    std::string reason;
    if (int status = check_request_framing(h.headers, &reason)) {
      s->fail(status, std::move(reason));
      return -1;
    }
  } else {
    h.status = p->status_code;
    // llhttp takes any three digits: "000" or "042" is no HTTP status, and passed on it would
    // reach the client as one. The upstream's response is malformed (502).
    if (h.status < 100) {
      s->fail(502, "invalid status code");
      return -1;
    }
    // Interim responses (100, 103, ...) are not the answer: skip them; 101 is a switch.
    if (h.status >= 100 && h.status < 200 && h.status != 101) return 0;
  }
  h.keep_alive = llhttp_should_keep_alive(p) != 0;
  h.chunked = (p->flags & F_CHUNKED) != 0;
  if (p->flags & F_CONTENT_LENGTH) h.content_length = p->content_length;
  h.upgrade = p->upgrade != 0;
  int rc = s->handler_->on_head(h);
  if (rc < 0) {
    s->fail(s->error_status_ ? s->error_status_ : 400, s->error_reason_);
    return -1;
  }
  // The handler may decline a switch it was asked for (an Upgrade the route does not allow):
  // the message then ends as an ordinary one and the bytes after it are parsed as HTTP.
  if (!h.upgrade) p->upgrade = 0;
  if (s->head_response_ && p->type == HTTP_RESPONSE && h.status >= 200) return 1;
  return rc;
}

int Parser::cb_body(llhttp_t* p, const char* at, size_t len) {
  self(p)->handler_->on_body(at, len);
  return 0;
}

int Parser::cb_chunk_header(llhttp_t* p) { return 0; }

int Parser::cb_message_complete(llhttp_t* p) {
  Parser* s = self(p);
  // 1xx interim responses are not messages of their own for a proxy: skip them quietly.
  if (p->type == HTTP_RESPONSE && s->head_.status >= 100 && s->head_.status < 200 &&
      s->head_.status != 101) {
    s->in_message_ = false;
    s->interim_ = true;
    return HPE_PAUSED;  // feed() resumes by itself, after resetting the head scan
  }
  if (!s->trailers_.empty()) {
    // llhttp lets a trailer's "Connection: close" end the connection after this message, but a
    // trailer section cannot manage the connection (RFC 9110 §6.5.1): the head decided.
    if (s->head_.keep_alive) p->flags &= uint16_t(~F_CONNECTION_CLOSE);
    s->handler_->on_trailers(s->trailers_);
  }
  s->in_message_ = false;
  s->handler_->on_complete();
  // After an upgrade llhttp stops by itself (HPE_PAUSED_UPGRADE) and the rest is the tunnel's.
  return p->upgrade ? 0 : HPE_PAUSED;
}

}  // namespace sy::http1
