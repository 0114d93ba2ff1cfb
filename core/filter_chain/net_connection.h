// A TCP proxy connection as network filters see it: what sy_conn_t* points at.
#pragma once

#include <switchyard/module.h>

#include <string>
#include <string_view>

namespace sy::filters {

// A TCP proxy connection as network filters see it (sy_conn_t* points at one).
class NetConnection {
 public:
  virtual ~NetConnection() = default;
  // The bytes the current on_data callback is about (null outside one, or for the other dir).
  virtual std::string* data(sy_direction_t dir) = 0;
  // Writes toward DIR's destination now (SY_REQUEST: to the upstream).
  virtual bool inject(sy_direction_t dir, std::string_view bytes) = 0;
  virtual void close() = 0;
  virtual bool attribute(std::string_view path, std::string* out) const = 0;
  // Since 1.2 (sy_host_t's conn_resume, conn_pause_reading, conn_shutdown_write): FILTER (what
  // its on_connection_create returned) passes on what it holds in DIR; reading from a side
  // stops or goes on; DIR's destination gets a FIN.
  virtual sy_status_t resume(void* filter, sy_direction_t dir) = 0;
  virtual sy_status_t pause_reading(sy_direction_t side, bool paused) = 0;
  virtual sy_status_t shutdown_write(sy_direction_t dir) = 0;
  sy_conn_t* handle() { return reinterpret_cast<sy_conn_t*>(this); }
  static NetConnection* from(sy_conn_t* c) { return reinterpret_cast<NetConnection*>(c); }
};

}  // namespace sy::filters
