// A TCP proxy session: client bytes to an upstream endpoint and back, through the listener's
// network filters, with back-pressure both ways.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/filter_chain/factory.h"
#include "core/filter_chain/net_connection.h"
#include "core/net/socket.h"
#include "core/server/worker.h"

namespace sy::server {

class TcpSession : public DownstreamConn, public filters::NetConnection {
 public:
  TcpSession(Worker* w, std::shared_ptr<ListenerSlot> slot, net::Socket* client);
  ~TcpSession() override;
  void start();

  // DownstreamConn
  void drain() override {}  // a tunnel has no request boundary: it ends when either side does
  void abort() override;
  const std::string& listener() const override { return slot_->name; }

  // filters::NetConnection
  std::string* data(sy_direction_t dir) override;
  bool inject(sy_direction_t dir, std::string_view bytes) override;
  void close() override { abort(); }
  bool attribute(std::string_view path, std::string* out) const override;

 private:
  // One side's socket events, forwarding to the session.
  struct Side : net::SocketEvents {
    TcpSession* s;
    sy_direction_t from;  // SY_REQUEST: the client side
    void on_read(const char* d, size_t n) override { s->on_bytes(from, d, n); }
    void on_eof() override { s->on_side_eof(from); }
    void on_error(int err) override { s->on_side_error(from, err); }
    void on_drained() override { s->on_side_drained(from); }
    void on_connect(int status) override { s->on_upstream_connect(status); }
  };
  void connect_next();
  void on_upstream_connect(int status);
  void on_bytes(sy_direction_t from, const char* data, size_t len);
  void on_side_eof(sy_direction_t from);
  void on_side_error(sy_direction_t from, int err);
  void on_side_drained(sy_direction_t side);
  void deliver(sy_direction_t dir, std::string data, bool end);
  net::Socket* dest(sy_direction_t dir) { return dir == SY_REQUEST ? upstream_ : client_; }
  void finish();

  Worker* worker_;
  std::shared_ptr<ListenerSlot> slot_;
  std::shared_ptr<const Runtime> rt_;
  const ListenerRuntime* lr_;
  net::Socket* client_;
  net::Socket* upstream_ = nullptr;
  Side client_side_, upstream_side_;
  net::Timer timer_;
  std::string pending_;  // client bytes before the upstream connected
  uint32_t attempts_ = 0;
  size_t endpoint_ = 0;
  bool connected_ = false;
  bool closed_ = false;
  std::string peer_ip_;
  struct Entry {
    std::shared_ptr<filters::NetworkFilterFactory> factory;
    void* filter = nullptr;
  };
  std::vector<Entry> filters_;
  std::string* current_data_ = nullptr;
  sy_direction_t current_dir_ = SY_REQUEST;
  uint64_t bytes_[2] = {0, 0};
};

}  // namespace sy::server
