// How many connections and streams each client address holds on one listener of one worker,
// so that one address cannot take what every client shares: a cluster's connection pool is
// per worker, and a client under its cap always leaves room in it for the others.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

namespace sy::server {

class ClientTable;

// A hold on one connection or one stream of an address; given back when destroyed.
class ClientLease {
 public:
  enum Kind { kConnection = 0, kStream = 1 };
  ClientLease(std::shared_ptr<ClientTable> table, std::string ip, Kind kind)
      : table_(std::move(table)), ip_(std::move(ip)), kind_(kind) {}
  ~ClientLease();
  ClientLease(const ClientLease&) = delete;
  ClientLease& operator=(const ClientLease&) = delete;

 private:
  std::shared_ptr<ClientTable> table_;
  std::string ip_;
  Kind kind_;
};

// One per listener slot (a listener on one worker): used on that worker's thread only.
class ClientTable : public std::enable_shared_from_this<ClientTable> {
 public:
  // A lease for IP, or null when IP already holds MAX of that kind (MAX 0: no cap).
  std::shared_ptr<ClientLease> take(const std::string& ip, ClientLease::Kind kind, uint32_t max);
  uint32_t held(const std::string& ip, ClientLease::Kind kind) const;

 private:
  friend class ClientLease;
  void give_back(const std::string& ip, ClientLease::Kind kind);

  struct Counts {
    uint32_t n[2] = {0, 0};
  };
  std::unordered_map<std::string, Counts> counts_;
};

}  // namespace sy::server
