// Upstream connect and TLS start, shared by the pools (see dial.h).
#include "core/upstream/dial.h"

namespace sy::upstream::dial {

std::string connect(net::Socket* s, const server::ClusterRuntime& cluster, size_t ep,
                    net::Timer& timer, std::function<void()> on_timeout) {
  int rc = s->connect(reinterpret_cast<const sockaddr*>(&cluster.addrs[ep]));
  if (rc != 0) return std::string("upstream connect error: ") + uv_strerror(rc);
  timer.start(uint64_t(cluster.cfg.connect_timeout.count()), std::move(on_timeout));
  return "";
}

Step connected(net::Socket* s, int status, const server::ClusterRuntime& cluster, size_t ep,
               std::string* why) {
  if (status != 0) {
    *why = std::string("upstream connect error: ") + uv_strerror(status);
    return Step::kFailed;
  }
  const auto& tls = cluster.tls;
  if (!tls) return Step::kConnected;
  // Connected is not ready: the connect timeout keeps running through the handshake.
  s->start_tls_client(tls->ctx(), tls->sni(), tls->verify_host(cluster.cfg.endpoints[ep].host));
  s->read_start();
  return Step::kHandshaking;
}

bool handshaken(int status, const std::string& error, const server::ClusterRuntime& cluster,
                std::string* why) {
  if (status == 0) return true;
  cluster.stats.tls_handshake_error->inc();
  *why = "upstream tls handshake failed: " + error;
  return false;
}

}  // namespace sy::upstream::dial
