// The SDK's gRPC framing helper (abi/sdk/switchyard/grpc_framing.hpp): prefixes, and a
// deframer that reassembles messages however the bytes are split.
#include "abi/sdk/switchyard/grpc_framing.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace grpc = sy::sdk::grpc;

namespace {

using Messages = std::vector<std::pair<std::string, bool>>;

// Feeds STREAM to a deframer in pieces of PIECE bytes; the messages that came out.
Messages deframe(const std::string& stream, size_t piece, grpc::Deframer& d, bool* ok) {
  Messages out;
  *ok = true;
  for (size_t off = 0; off < stream.size() && *ok; off += piece)
    *ok = d.feed(std::string_view(stream).substr(off, piece),
                 [&](std::string_view m, bool compressed) { out.emplace_back(m, compressed); });
  return out;
}

}  // namespace

TEST(GrpcFraming, PrefixIsFlagThenBigEndianLength) {
  EXPECT_EQ(grpc::frame(""), std::string("\0\0\0\0\0", 5));
  EXPECT_EQ(grpc::frame("hi"), std::string("\0\0\0\0\2hi", 7));
  std::string big(0x01020304 & 0xffff, 'x');  // 0x0304 bytes
  EXPECT_EQ(grpc::frame(big).substr(0, 5), std::string("\0\0\0\x03\x04", 5));
  EXPECT_EQ(grpc::frame("z", true), std::string("\1\0\0\0\1z", 6));
  std::string out = "keep";
  EXPECT_TRUE(grpc::append_frame(out, "ab"));
  EXPECT_EQ(out, std::string("keep\0\0\0\0\2ab", 11));
}

TEST(GrpcFraming, DeframesAcrossEverySplit) {
  const Messages sent = {{"first", false},
                         {"", false},
                         {std::string(70000, 'm'), false},
                         {"packed", true},
                         {"last", false}};
  std::string stream;
  for (const auto& [m, c] : sent) grpc::append_frame(stream, m, c);
  for (size_t piece : {size_t(1), size_t(2), size_t(4), size_t(5), size_t(6), size_t(7),
                       size_t(1000), stream.size()}) {
    grpc::Deframer d;
    bool ok = false;
    EXPECT_EQ(deframe(stream, piece, d, &ok), sent) << "pieces of " << piece;
    EXPECT_TRUE(ok);
    EXPECT_TRUE(d.idle());
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(GrpcFraming, AMessageCutShortIsNotIdle) {
  std::string stream = grpc::frame("complete") + grpc::frame("cut short").substr(0, 8);
  grpc::Deframer d;
  bool ok = false;
  Messages got = deframe(stream, 3, d, &ok);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "complete");
  EXPECT_TRUE(ok);
  EXPECT_FALSE(d.idle());
  EXPECT_EQ(d.buffered(), 8u);
}

TEST(GrpcFraming, RefusesOversizedMessagesAndBadFlags) {
  grpc::Deframer small(10);
  bool ok = true;
  EXPECT_TRUE(deframe(grpc::frame("0123456789"), 100, small, &ok).size() == 1 && ok);
  EXPECT_TRUE(deframe(grpc::frame("0123456789X"), 2, small, &ok).empty());
  EXPECT_FALSE(ok);
  EXPECT_NE(small.error().find("over the limit of 10"), std::string::npos) << small.error();
  EXPECT_FALSE(small.idle());
  // Once failed, it stays failed.
  EXPECT_FALSE(small.feed(grpc::frame("a"), [](std::string_view, bool) {}));

  grpc::Deframer d;
  EXPECT_TRUE(deframe(std::string("\2\0\0\0\1a", 6), 6, d, &ok).empty());
  EXPECT_FALSE(ok);
  EXPECT_NE(d.error().find("invalid gRPC message flag 2"), std::string::npos) << d.error();
}
