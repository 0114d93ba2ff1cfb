// A TCP proxy session: client bytes to an upstream endpoint and back, through the listener's
// network filters, with back-pressure both ways. Each direction ends on its own: a FIN from one
// side is passed through the filters and sent on as a FIN, and the other direction keeps
// flowing until it ends too (a half-closed tunnel, as TCP allows).
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
  sy_status_t resume(void* filter, sy_direction_t dir) override;
  sy_status_t pause_reading(sy_direction_t side, bool paused) override;
  sy_status_t shutdown_write(sy_direction_t dir) override;

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
  // Runs DIR's bytes (and END) through the filters from position FROM (0: the first filter of
  // that direction), then on to the destination.
  void deliver(sy_direction_t dir, std::string data, bool end, size_t from = 0);
  void write_out(sy_direction_t dir, std::string_view data);
  void end_out(sy_direction_t dir);
  // Starts or stops reading DIR's source: it reads only when nothing holds it back (a filter's
  // pause, held bytes above the watermark, a full write queue at the destination, its FIN).
  void refresh_reading(sy_direction_t dir);
  size_t held(sy_direction_t dir) const;
  net::Socket* dest(sy_direction_t dir) { return dir == SY_REQUEST ? upstream_ : client_; }
  net::Socket* source(sy_direction_t dir) { return dir == SY_REQUEST ? client_ : upstream_; }
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
  // What a filter holds in one direction after SY_STOP_AND_WATERMARK.
  struct Hold {
    bool on = false;
    bool end = false;
    std::string bytes;
  };
  struct Entry {
    std::shared_ptr<filters::NetworkFilterFactory> factory;
    void* filter = nullptr;
    Hold hold[2];
  };
  // The filter at position K of DIR's order: requests run the filters in order, responses in
  // reverse, like HTTP filters.
  Entry& at(sy_direction_t dir, size_t k) {
    return dir == SY_REQUEST ? filters_[k] : filters_[filters_.size() - 1 - k];
  }
  std::vector<Entry> filters_;
  std::string* current_data_ = nullptr;
  // The filter whose callback runs now (its name is the plugin_name attribute).
  const filters::NetworkFilterFactory* current_filter_ = nullptr;
  sy_direction_t current_dir_ = SY_REQUEST;
  // Per direction (index: sy_direction_t).
  bool eof_in_[2] = {false, false};       // the source sent its FIN
  bool fin_out_[2] = {false, false};      // the destination was sent (or will get) a FIN
  bool user_paused_[2] = {false, false};  // a filter paused reading the source
  bool hold_full_[2] = {false, false};    // held bytes passed the high watermark
  bool out_full_[2] = {false, false};     // the destination's write queue is above its high mark
  uint64_t bytes_[2] = {0, 0};
};

}  // namespace sy::server
