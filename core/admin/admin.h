// The admin API on the main thread: readiness, stats, config dump, reload, drain.
#pragma once

#include <uv.h>

#include <string>

#include "config/config.h"

namespace sy::server {
class Server;
}

namespace sy::admin {

class AdminServer {
 public:
  explicit AdminServer(server::Server* server);
  ~AdminServer();

  // Binds ADDRESS; "" on success, else the error.
  std::string listen(const config::Address& address);
  std::string address() const { return bound_; }

  struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
  };
  Response handle(const std::string& method, const std::string& path, const std::string& body);

 private:
  static void on_connection(uv_stream_t* server, int status);

  server::Server* server_;
  uv_tcp_t* tcp_ = nullptr;
  std::string bound_;
};

}  // namespace sy::admin
