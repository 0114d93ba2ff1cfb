// The contract between a Stream (one request/response exchange) and the downstream connection
// it arrived on. HTTP/1.1 and HTTP/2 connections implement it; the Stream never formats bytes
// for the wire itself, so filters and routing see one model whatever the protocol.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/http/headers.h"

struct uv_loop_s;
typedef struct uv_loop_s uv_loop_t;

namespace sy::upstream {
class Pool;
}

namespace sy::server {

struct ClusterRuntime;
class ClientLease;

// What a stream needs of the worker thread it runs on. The Worker implements it; a unit test
// gives a stream a fake one, so a stream can be driven without a running worker.
class StreamWorker {
 public:
  virtual uv_loop_t* loop() = 0;
  virtual int index() const = 0;
  // The worker's pool for CLUSTER (made on first use).
  virtual upstream::Pool* pool(const std::shared_ptr<ClusterRuntime>& cluster) = 0;
  virtual void access_log(std::string line) = 0;
  // Draining: responses close their connections.
  virtual bool draining() const = 0;

 protected:
  ~StreamWorker() = default;
};

// What a stream may learn about its connection (stream info and attributes).
struct ConnInfo {
  std::string peer_ip;
  uint16_t peer_port = 0;
  std::string protocol;  // "HTTP/1.1" or "HTTP/2" (HTTP/1.0 is decided per request)
  bool tls = false;
  std::string tls_version;   // "TLSv1.3"; empty when plain
  std::string sni;           // server name the client asked for
  std::string peer_cert;     // client certificate, PEM; empty when none
  std::string peer_subject;  // its subject, one line
  std::string peer_uri_san;  // its first URI subject alternative name; empty when none
  std::string peer_dns_san;  // its first DNS subject alternative name; empty when none
  uint64_t id = 0;           // connection id, unique in the process
  // The connection's place under its listener's limits.connections_per_client.
  std::shared_ptr<ClientLease> lease;
};

struct ResponseHead {
  int status = 0;
  const http::HeaderMap* headers = nullptr;  // may hold pseudo-headers; encoders skip them
  std::optional<uint64_t> content_length;    // known body length; nullopt = unknown
  bool end_stream = false;                   // no body follows
  bool is_head = false;                      // the request was HEAD
  bool http10 = false;                       // the request was HTTP/1.0
  bool close = false;                        // HTTP/1: the connection closes after this
  bool upgrade = false;                      // a 101 switching protocols, headers as they are
};

class StreamOwner {
 public:
  virtual ~StreamOwner() = default;
  virtual StreamWorker* worker() const = 0;
  virtual const ConnInfo& info() const = 0;

  // The response, in order: head, body pieces, end (with trailers or without).
  virtual void send_continue() = 0;
  virtual void send_response_head(const ResponseHead& head) = 0;
  virtual void send_response_body(const char* data, size_t len) = 0;
  virtual void send_response_end(const http::HeaderMap* trailers) = 0;
  // The response is fully handed over; the connection may go on with its next stream.
  virtual void on_response_done() = 0;
  // The stream cannot go on (the response started and then failed): reset it. HTTP/1 has to
  // close the connection for that; HTTP/2 resets only this stream.
  virtual void reset_stream() = 0;

  // Back-pressure: response bytes wait above the high watermark; request bytes stop/start.
  virtual bool above_high() const = 0;
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;

  // One timer per stream (the response timeout), owned by the connection.
  virtual void start_stream_timer(uint64_t ms, std::function<void()> fn) = 0;
  virtual void stop_stream_timer() = 0;

  // Whether the client may start one more stream (limits.streams_per_client); the stream holds
  // its place until the connection is done with it.
  virtual bool admit_stream() { return true; }

  // Batch the writes of one upstream read into one downstream write.
  virtual void cork() {}
  virtual void uncork() {}

  // HTTP/1 only: after a 101, raw bytes both ways.
  virtual void enter_tunnel() {}
  virtual void end_tunnel() {}
  virtual void tunnel_write(const char* data, size_t len) {}
};

}  // namespace sy::server
