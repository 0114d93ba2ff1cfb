// Drives the HTTP/1 codec (core/http1/parser) the way the connections do: feed, and on a pause
// resume and feed the rest (core/server/http1_conn.cc for requests, core/upstream/pool.cc for
// responses). The input is parsed twice, whole and cut into small segments; both must yield the
// same messages, because a parse that depends on how TCP happened to segment the bytes is a
// request-smuggling bug waiting to happen.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/http1/parser.h"
#include "tests/fuzz/fuzz_check.h"

namespace sy::fuzz {

// Writes what the parser reports as text, so that two parses can be compared.
class Transcript : public http1::ParserHandler {
 public:
  int on_head(http1::MessageHead& h) override {
    log_ += "H " + h.method + " " + h.target + " " + std::to_string(h.status) + " " + h.reason +
            " " + std::to_string(h.major) + "." + std::to_string(h.minor) +
            (h.keep_alive ? " ka" : "") + (h.chunked ? " chunked" : "") +
            (h.upgrade ? " upgrade" : "") +
            (h.content_length ? " cl=" + std::to_string(*h.content_length) : "") + "\n";
    for (const auto& x : h.headers) {
      // Field names and values as the rest of the proxy will see them: never empty names,
      // never a CR or LF inside (they would split headers when written out again).
      FUZZ_CHECK(!x.name.empty());
      FUZZ_CHECK(x.name.find_first_of("\r\n:") == std::string::npos);
      FUZZ_CHECK(x.value.find_first_of("\r\n") == std::string::npos);
      log_ += " " + x.name + ": " + x.value + "\n";
    }
    FUZZ_CHECK(h.method.find_first_of(" \r\n") == std::string::npos);
    FUZZ_CHECK(h.target.find_first_of(" \r\n") == std::string::npos);
    body_open_ = false;
    return 0;
  }
  void on_body(const char* data, size_t len) override {
    // Body pieces arrive however the input was cut; only their concatenation is compared.
    if (!body_open_) log_ += "B ";
    body_open_ = true;
    log_.append(data, len);
  }
  void on_trailers(http::HeaderMap& t) override {
    log_ += "\nT\n";
    for (const auto& x : t) log_ += " " + x.name + ": " + x.value + "\n";
  }
  void on_complete() override {
    log_ += "\nC\n";
    body_open_ = false;
  }
  void note(const std::string& s) {
    log_ += "\n" + s + "\n";
    body_open_ = false;
  }
  const std::string& log() const { return log_; }

 private:
  bool body_open_ = false;
  std::string log_;
};

// Parses DATA in segments of at most SEGMENT bytes (0: all at once) and returns the transcript.
inline std::string parse_all(llhttp_type_t type, const uint8_t* data, size_t size, size_t segment,
                             bool head_response, http1::Limits limits) {
  Transcript t;
  http1::Parser p(type, &t, limits);
  p.expect_head_response(head_response);
  const char* s = reinterpret_cast<const char*>(data);
  size_t at = 0;
  while (at < size) {
    size_t n = segment == 0 ? size - at : std::min(segment, size - at);
    auto r = p.feed(s + at, n);
    switch (r.status) {
      case http1::Parser::Status::kOk:
        at += n;
        break;
      case http1::Parser::Status::kPaused:
        FUZZ_CHECK(r.consumed <= n);
        at += r.consumed;
        p.resume();
        break;
      case http1::Parser::Status::kUpgrade:
        // The rest belongs to the tunnel.
        FUZZ_CHECK(r.consumed <= n);
        t.note("U " + std::to_string(size - at - r.consumed));
        return t.log();
      case http1::Parser::Status::kError:
        // Only the fact of the error is compared, not its status: which of two faults in one
        // head is seen first (a bare LF by the raw-byte scan, a bad version by llhttp) depends
        // on where the head was cut, and either way the connection is answered and closed.
        FUZZ_CHECK(p.error_status() >= 400 && p.error_status() <= 599);
        t.note("E");
        return t.log();
    }
  }
  // The peer closed (ends a close-delimited response body).
  bool clean = p.finish();
  t.note(clean ? "EOF" : "EOF mid-message");
  return t.log();
}

// The target body: the first byte picks the segment size and the options, the rest is the
// stream of bytes from the peer.
inline int run_http1(llhttp_type_t type, const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t ctl = data[0];
  ++data;
  --size;
  size_t segment = (ctl & 0x1f) + 1;
  bool head_response = type == HTTP_RESPONSE && (ctl & 0x20);
  http1::Limits limits;
  if (ctl & 0x40) limits = {256, 8};  // small limits, so the fuzzer reaches them
  std::string whole = parse_all(type, data, size, 0, head_response, limits);
  std::string cut = parse_all(type, data, size, segment, head_response, limits);
  if (whole != cut) {
    std::fprintf(stderr, "whole:\n%s\n---- in segments of %zu:\n%s\n", whole.c_str(), segment,
                 cut.c_str());
    FUZZ_CHECK(whole == cut);
  }
  return 0;
}

}  // namespace sy::fuzz
