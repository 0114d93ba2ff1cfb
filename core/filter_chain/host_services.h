// What the host table needs from the server (workers, posts, callouts, cluster endpoints),
// installed once at start-up, and a callout's reply as the host hands it to a module.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/http/headers.h"

namespace sy::filters {

// A callout's reply as the host hands it to the module.
struct CalloutResult {
  uint32_t status = 0;
  http::HeaderMap headers, trailers;
  std::string body;
  std::string failure;
};

// What the host table needs from the server, installed once at start-up.
struct HostServices {
  std::function<uint32_t()> worker_count;
  // Any thread: run FN on worker INDEX (-1: any). False when there is no such worker.
  std::function<bool(int32_t index, std::function<void()> fn)> post_to_worker;
  // Any thread: run FN on the main thread (host post_to_main, since ABI 1.2).
  std::function<void(std::function<void()> fn)> post_to_main;
  // Worker thread: an HTTP request to CLUSTER; DONE runs on the same worker. Returns a cancel
  // function (empty when the callout could not start; then DONE has not run and never will).
  std::function<std::function<void()>(
      int worker, const std::string& cluster, http::HeaderMap headers, std::string body,
      uint64_t timeout_ms, std::function<void(const CalloutResult&)> done)>
      callout;
  // Main or worker thread: "host:port" of a cluster's endpoint INDEX.
  std::function<bool(const std::string& cluster, size_t index, std::string* out)> cluster_endpoint;
};
void set_host_services(HostServices services);

}  // namespace sy::filters
