// The first steps of every upstream connection, whatever protocol runs on it: connect with the
// cluster's connect timeout, then the TLS handshake when the cluster has TLS. The HTTP/1.1 and
// HTTP/2 pools both dial through here, so timeouts, SNI, verification and the error texts in
// the access log are the same for both.
#pragma once

#include <functional>
#include <string>

#include "core/net/socket.h"
#include "core/runtime/runtime.h"

namespace sy::upstream::dial {

// Connects S to CLUSTER's endpoint EP and arms TIMER with the connect timeout, which calls
// ON_TIMEOUT. Returns "" or why the connect could not even start.
std::string connect(net::Socket* s, const server::ClusterRuntime& cluster, size_t ep,
                    net::Timer& timer, std::function<void()> on_timeout);

enum class Step { kFailed, kHandshaking, kConnected };

// For SocketEvents::on_connect. kHandshaking: TLS has started (and reading, which the
// handshake needs); the socket's on_tls_handshake comes next. kFailed sets WHY.
Step connected(net::Socket* s, int status, const server::ClusterRuntime& cluster, size_t ep,
               std::string* why);

// For SocketEvents::on_tls_handshake: false (WHY set, and counted) when it failed.
bool handshaken(int status, const std::string& error, const server::ClusterRuntime& cluster,
                std::string* why);

}  // namespace sy::upstream::dial
