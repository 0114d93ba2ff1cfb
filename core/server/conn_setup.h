// The first moments of a downstream connection: the TLS handshake (certificate by SNI, ALPN)
// and, on a plain listener that speaks both, a look at the first bytes for the HTTP/2 preface.
// Then the socket goes to the connection that speaks the chosen protocol.
#pragma once

#include <memory>
#include <string>

#include "core/net/socket.h"
#include "core/server/stream_owner.h"
#include "core/server/worker.h"

namespace sy::server {

// Peer address and a process-unique id for an accepted socket, and its per-client LEASE.
ConnInfo make_conn_info(net::Socket* socket, std::shared_ptr<ClientLease> lease);

class ConnectionSetup : public DownstreamConn, public net::SocketEvents {
 public:
  ConnectionSetup(Worker* w, std::shared_ptr<ListenerSlot> slot, net::Socket* socket,
                  std::shared_ptr<ClientLease> lease);
  ~ConnectionSetup() override;
  void start();

  // Nothing is in flight yet: draining closes at once.
  void drain() override { abort(); }
  void abort() override;
  const std::string& listener() const override { return slot_->name; }

  void on_read(const char* data, size_t len) override;
  void on_eof() override { abort(); }
  void on_error(int) override { abort(); }
  void on_tls_handshake(int status, const std::string& error) override;

 private:
  void hand_over(bool http2);

  Worker* worker_;
  std::shared_ptr<ListenerSlot> slot_;
  ListenerView view_;  // the listener as it was at accept (see ListenerView)
  const ListenerView* lr_ = &view_;
  net::Socket* socket_;
  net::Timer timer_;
  ConnInfo info_;
  std::string prelude_;  // bytes read while sniffing
  bool tls_ = false;
  bool done_ = false;
};

}  // namespace sy::server
