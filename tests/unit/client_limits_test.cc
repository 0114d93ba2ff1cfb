// Per-client connection and stream counts: caps, release on destruction, no cap at 0.
#include "core/server/client_limits.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace sy::server {
namespace {

TEST(ClientTable, RefusesPastTheCapAndGivesPlacesBack) {
  auto table = std::make_shared<ClientTable>();
  auto a = table->take("10.0.0.1", ClientLease::kStream, 2);
  auto b = table->take("10.0.0.1", ClientLease::kStream, 2);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(table->take("10.0.0.1", ClientLease::kStream, 2), nullptr);
  // Another address, and the other kind for the same address, have their own counts.
  EXPECT_NE(table->take("10.0.0.2", ClientLease::kStream, 2), nullptr);
  auto c = table->take("10.0.0.1", ClientLease::kConnection, 1);
  EXPECT_NE(c, nullptr);
  EXPECT_EQ(table->held("10.0.0.1", ClientLease::kStream), 2u);
  a.reset();
  EXPECT_EQ(table->held("10.0.0.1", ClientLease::kStream), 1u);
  EXPECT_NE(table->take("10.0.0.1", ClientLease::kStream, 2), nullptr);
}

TEST(ClientTable, ZeroMeansNoCap) {
  auto table = std::make_shared<ClientTable>();
  std::vector<std::shared_ptr<ClientLease>> leases;
  for (int i = 0; i < 1000; ++i) {
    leases.push_back(table->take("::1", ClientLease::kConnection, 0));
    ASSERT_NE(leases.back(), nullptr);
  }
  EXPECT_EQ(table->held("::1", ClientLease::kConnection), 1000u);
  leases.clear();
  EXPECT_EQ(table->held("::1", ClientLease::kConnection), 0u);
}

TEST(ClientTable, ALeaseOutlivesItsTable) {
  // Streams are freed after their connection (and its listener slot) on some paths.
  auto table = std::make_shared<ClientTable>();
  auto lease = table->take("10.0.0.1", ClientLease::kStream, 1);
  table.reset();
  lease.reset();  // must not touch freed memory (ASan would say so)
}

}  // namespace
}  // namespace sy::server
