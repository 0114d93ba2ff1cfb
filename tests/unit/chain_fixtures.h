// What the host-table unit tests share: a stream end that records what leaves the chain, a
// real loop so that timers can be set, and a factory for a test filter's vtable.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/filter_chain/chain.h"

namespace sy::filters::chain_test {

inline sy_str_t S(std::string_view s) { return {s.data(), s.size()}; }

// A stream that records what leaves the chain; its loop is real so that timers can be set.
struct Sink : ChainSink {
  explicit Sink(uv_loop_t* l) : loop_(l) {}
  std::string req_body;
  std::vector<std::string> events;
  void request_headers_out(bool end, int64_t) override {
    events.push_back(end ? "req_headers+end" : "req_headers");
  }
  void request_data_out(std::string& d, bool end) override {
    req_body += d;
    if (end) events.push_back("req_end");
  }
  void request_trailers_out() override {}
  void response_headers_out(bool, int64_t) override {}
  void response_data_out(std::string&, bool) override {}
  void response_trailers_out() override {}
  void pause_source(sy_direction_t) override {}
  void resume_source(sy_direction_t) override {}
  bool local_reply_from_filter(int, const http::HeaderMap&, std::string_view,
                               std::string) override {
    return true;
  }
  bool response_started() const override { return false; }
  void clear_route_cache() override {}
  bool set_upstream_override(std::string_view) override { return true; }
  bool attribute(std::string_view, std::string*) const override { return false; }
  const std::string& route_name() const override { return route; }
  uv_loop_t* loop() const override { return loop_; }
  int worker_index() const override { return 0; }
  uint64_t buffer_limit() const override { return 1 << 20; }
  void pseudo_headers(sy_direction_t dir, std::vector<http::Header>& out) const override {
    if (dir == SY_REQUEST)
      out.push_back({":path", "/p"});
    else
      out.push_back({":status", "200"});
  }
  // Stands for the generations a stream's posts hold.
  std::shared_ptr<const void> generations() const override { return keep; }
  std::shared_ptr<const void> keep = std::make_shared<int>(0);
  HeaderLimits header_limits() const override { return limits; }
  HeaderLimits limits;
  std::string route = "r";
  uv_loop_t* loop_;
};

// Runs the loop until every handle (timers being closed included) is gone.
struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
};

inline std::shared_ptr<HttpFilterFactory> factory_for(const sy_http_filter_t* vt, void* config,
                                                      ModuleScope* scope) {
  auto f = std::make_shared<HttpFilterFactory>();
  f->vt = vt;
  f->config = config;
  f->scope = scope;
  f->module = vt->name;
  return f;
}

}  // namespace sy::filters::chain_test
