// The admin API on the main thread: readiness, stats, config dump, reload, drain.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

#include "config/config.h"

namespace sy::admin {

// What the admin API asks of the proxy. The server implements it, so admin/ needs nothing of
// server/ (the arrow points one way: server -> admin).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual uv_loop_t* loop() = 0;
  virtual bool ready() const = 0;
  virtual uint64_t version() const = 0;
  virtual std::string config_dump() const = 0;
  virtual std::string reload() = 0;  // "" or why the new config was refused
  virtual void drain() = 0;
  virtual std::string modules_json() const = 0;
  virtual void refresh_module_stats() = 0;
  // "" and the new GENERATION, or why not (the old generation still serves).
  virtual std::string swap_module(const std::string& name, const std::string& path,
                                  uint64_t* generation) = 0;
  virtual std::string rollback_module(const std::string& name, uint64_t* generation) = 0;
};

class AdminServer {
 public:
  explicit AdminServer(Backend* server);
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

  Backend* server_;
  uv_tcp_t* tcp_ = nullptr;
  std::string bound_;
};

}  // namespace sy::admin
