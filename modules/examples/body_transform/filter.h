// body_transform's per-stream filter: rewrites the response body chunk by chunk.
#pragma once

#include <switchyard/sdk.hpp>

#include "config.h"
#include "rewriter.h"

namespace body_transform {

class Filter : public sy::sdk::HttpFilter {
 public:
  explicit Filter(const Config& config) : config_(config), rewriter_(config.from, config.to) {}

  sy_filter_status_t on_response_headers(bool end_stream) override;
  sy_filter_status_t on_response_body(bool end_stream) override;
  void on_stream_complete() override;

 private:
  const Config& config_;
  Rewriter rewriter_;
  bool active_ = true;
};

}  // namespace body_transform
