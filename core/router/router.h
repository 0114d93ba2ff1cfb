// Route matching: picks the first route of a listener whose match accepts the request.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/http/headers.h"

namespace re2 {
class RE2;
}

namespace sy::router {

// What the router needs to know about a request.
struct RequestView {
  std::string_view path;       // origin-form target, may include ?query
  std::string_view authority;  // Host header / :authority, may include :port
  const http::HeaderMap* headers = nullptr;
};

// A compiled route table for one listener. Immutable once built; shared by all workers.
class Router {
 public:
  // Compiles every regex. On a bad regex returns nullptr and fills ERRORS (with the route's loc).
  static std::unique_ptr<Router> build(const config::Listener& listener,
                                       std::vector<config::Error>* errors);
  ~Router();

  // Index into the listener's routes of the first match, or -1.
  int match(const RequestView& req) const;

 private:
  struct CompiledHeader;
  struct CompiledRoute;
  Router() = default;
  std::vector<CompiledRoute> routes_;
};

}  // namespace sy::router
