// metrics_demo's per-stream filter: counts requests, streams in flight and response sizes.
#pragma once

#include <cstdint>
#include <switchyard/sdk.hpp>

#include "config.h"

namespace metrics_demo {

class Filter : public sy::sdk::HttpFilter {
 public:
  explicit Filter(const Config& config) : config_(config) {}
  ~Filter() override;

  sy_filter_status_t on_request_headers(bool end_stream) override;
  sy_filter_status_t on_response_body(bool end_stream) override;
  void on_stream_complete() override;

 private:
  void leave();

  const Config& config_;
  bool in_flight_ = false;
  uint64_t response_bytes_ = 0;
};

}  // namespace metrics_demo
