// Switchyard SDK: gRPC message framing for streaming callouts (header-only, C++20, standard
// library only; no protobuf). Each gRPC message on an HTTP/2 stream is a 5-byte prefix — one
// flag byte (1: the message is compressed with the call's grpc-encoding) and the message
// length as a 32-bit big-endian number — then the message bytes. A module encodes its protobuf
// messages itself, frames them with frame() / append_frame(), sends them with
// stream_callout_send_data, and feeds the callout's response DATA to a Deframer, which hands
// back whole messages however the bytes were split.
//
//   sy::sdk::grpc::Deframer deframer;
//   bool ok = deframer.feed(data, [&](std::string_view message, bool compressed) { ... });
//   // !ok: deframer.error() says why (a message over the limit, a bad flag byte); stop reading.
//   // At the end of the response, deframer.idle() is false if a message was cut short.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sy::sdk::grpc {

inline constexpr size_t kPrefixSize = 5;
// gRPC's default receive limit.
inline constexpr size_t kDefaultMaxMessage = 4 * 1024 * 1024;

// Appends MESSAGE to OUT with its prefix. COMPRESSED sets the flag only: the bytes must already
// be compressed. Messages over 4 GiB - 1 cannot be framed (gRPC's length is 32 bits): false.
inline bool append_frame(std::string& out, std::string_view message, bool compressed = false) {
  if (message.size() > UINT32_MAX) return false;
  const uint32_t n = static_cast<uint32_t>(message.size());
  const char prefix[kPrefixSize] = {static_cast<char>(compressed ? 1 : 0),
                                    static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                                    static_cast<char>(n >> 8), static_cast<char>(n)};
  out.append(prefix, kPrefixSize);
  out.append(message);
  return true;
}

// MESSAGE with its prefix, as one string.
inline std::string frame(std::string_view message, bool compressed = false) {
  std::string out;
  out.reserve(kPrefixSize + message.size());
  append_frame(out, message, compressed);
  return out;
}

// Reassembles messages from response bytes split anywhere. Keeps at most one partial message.
class Deframer {
 public:
  explicit Deframer(size_t max_message = kDefaultMaxMessage) : max_(max_message) {}

  // Feeds DATA; calls FN(std::string_view message, bool compressed) for each message completed
  // (the view lasts for that call). Returns false, and from then on ignores input, when a
  // prefix is invalid (flag not 0 or 1) or announces a message over the limit.
  template <class Fn>
  bool feed(std::string_view data, Fn&& fn) {
    if (!error_.empty()) return false;
    // Whole messages straight from DATA when nothing is pending: no copy.
    if (buf_.empty()) {
      while (data.size() >= kPrefixSize) {
        size_t n = 0;
        bool compressed = false;
        if (!parse_prefix(data, &n, &compressed)) return false;
        if (data.size() < kPrefixSize + n) break;
        fn(data.substr(kPrefixSize, n), compressed);
        data.remove_prefix(kPrefixSize + n);
      }
      buf_.assign(data);
      return true;
    }
    buf_.append(data);
    size_t off = 0;
    while (buf_.size() - off >= kPrefixSize) {
      std::string_view rest(buf_.data() + off, buf_.size() - off);
      size_t n = 0;
      bool compressed = false;
      if (!parse_prefix(rest, &n, &compressed)) return false;
      if (rest.size() < kPrefixSize + n) break;
      fn(rest.substr(kPrefixSize, n), compressed);
      off += kPrefixSize + n;
    }
    buf_.erase(0, off);
    return true;
  }

  // No partial message is held: a stream that ends now ended cleanly.
  bool idle() const { return buf_.empty() && error_.empty(); }
  // Bytes of a partial message held.
  size_t buffered() const { return buf_.size(); }
  // Why feed() returned false; empty while it has not.
  const std::string& error() const { return error_; }

 private:
  bool parse_prefix(std::string_view p, size_t* n, bool* compressed) {
    const auto* u = reinterpret_cast<const unsigned char*>(p.data());
    if (u[0] > 1) {
      error_ = "invalid gRPC message flag " + std::to_string(u[0]);
      return false;
    }
    *compressed = u[0] == 1;
    *n = (size_t(u[1]) << 24) | (size_t(u[2]) << 16) | (size_t(u[3]) << 8) | size_t(u[4]);
    if (*n > max_) {
      error_ = "gRPC message of " + std::to_string(*n) + " bytes is over the limit of " +
               std::to_string(max_);
      return false;
    }
    return true;
  }

  size_t max_;
  std::string buf_;
  std::string error_;
};

}  // namespace sy::sdk::grpc
