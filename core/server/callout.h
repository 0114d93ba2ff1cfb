// An HTTP request a module makes to a configured cluster (sy_host_t.http_callout), on a worker,
// through that worker's connection pool.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/filter_chain/host_services.h"
#include "core/net/socket.h"
#include "core/upstream/pool.h"

namespace sy::server {

class Callout : public upstream::Client {
 public:
  using Done = std::function<void(const filters::CalloutResult&)>;
  // Calls DONE exactly once (success or failure), then ON_FINISHED so the owner can free it.
  // CLUSTER_NAME: the authority when HEADERS has none; TLS: the cluster speaks https.
  Callout(uv_loop_t* loop, upstream::Pool* pool, const std::string& cluster_name, bool tls,
          http::HeaderMap headers, std::string body, uint64_t timeout_ms, Done done,
          std::function<void(Callout*)> on_finished);
  ~Callout() override;
  void start();
  void cancel();

  void on_upstream_ready(upstream::Exchange* ex) override;
  void on_upstream_failure(Failure f, const std::string& details) override;
  int on_response_head(http1::MessageHead& head) override;
  void on_response_body(const char* data, size_t len) override;
  void on_response_trailers(http::HeaderMap& trailers) override;
  void on_response_complete() override;
  void on_upstream_reset(const std::string& details) override;
  void on_upstream_drained() override {}

 private:
  void finish(const std::string& failure);

  upstream::Pool* pool_;
  upstream::Exchange* conn_ = nullptr;
  std::string method_, path_, authority_, body_;
  http::HeaderMap headers_;
  bool keep_alive_ = false;
  uint64_t timeout_ms_;
  net::Timer timer_;
  Done done_;
  std::function<void(Callout*)> on_finished_;
  filters::CalloutResult result_;
  bool finished_ = false;
  bool acquiring_ = false;
  bool tls_ = false;
};

}  // namespace sy::server
