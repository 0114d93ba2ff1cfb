// Per-client connection and stream counts.
#include "core/server/client_limits.h"

namespace sy::server {

ClientLease::~ClientLease() { table_->give_back(ip_, kind_); }

std::shared_ptr<ClientLease> ClientTable::take(const std::string& ip, ClientLease::Kind kind,
                                               uint32_t max) {
  Counts& c = counts_[ip];
  if (max > 0 && c.n[kind] >= max) {
    if (c.n[0] == 0 && c.n[1] == 0) counts_.erase(ip);
    return nullptr;
  }
  ++c.n[kind];
  return std::make_shared<ClientLease>(shared_from_this(), ip, kind);
}

uint32_t ClientTable::held(const std::string& ip, ClientLease::Kind kind) const {
  auto it = counts_.find(ip);
  return it == counts_.end() ? 0 : it->second.n[kind];
}

void ClientTable::give_back(const std::string& ip, ClientLease::Kind kind) {
  auto it = counts_.find(ip);
  if (it == counts_.end()) return;
  Counts& c = it->second;
  if (c.n[kind] > 0) --c.n[kind];
  // Addresses that hold nothing leave the table, so it grows with live clients only.
  if (c.n[0] == 0 && c.n[1] == 0) counts_.erase(it);
}

}  // namespace sy::server
