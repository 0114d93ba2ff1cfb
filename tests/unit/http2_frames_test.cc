// The frame scanner that lets HTTP/2 limits see every frame header ahead of nghttp2.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/http2/frames.h"

namespace sy::http2 {
namespace {

std::string frame(uint32_t len, uint8_t type, uint8_t flags, uint32_t stream) {
  std::string f;
  f += char(len >> 16);
  f += char(len >> 8);
  f += char(len);
  f += char(type);
  f += char(flags);
  f += char(stream >> 24);
  f += char(stream >> 16);
  f += char(stream >> 8);
  f += char(stream);
  f += std::string(len, 'x');
  return f;
}

std::vector<FrameScanner::Header> scan_in_pieces(const std::string& bytes, size_t piece,
                                                 size_t skip) {
  FrameScanner s(skip);
  std::vector<FrameScanner::Header> got;
  for (size_t i = 0; i < bytes.size(); i += piece) {
    size_t n = std::min(piece, bytes.size() - i);
    s.scan(reinterpret_cast<const uint8_t*>(bytes.data() + i), n,
           [&](const FrameScanner::Header& h) {
             got.push_back(h);
             return true;
           });
  }
  return got;
}

TEST(FrameScanner, SeesEveryHeaderWhateverTheReadBoundaries) {
  std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  std::string bytes = preface + frame(6, 4, 0, 0) + frame(0, 0, 0, 1) + frame(100, 1, 4, 3) +
                      frame(0, 9, 0, 3) + frame(4, 3, 0, 0x80000005);
  for (size_t piece : {1, 2, 7, 9, 10, 33, 1000}) {
    auto got = scan_in_pieces(bytes, piece, preface.size());
    ASSERT_EQ(got.size(), 5u) << "piece " << piece;
    EXPECT_EQ(got[0].type, 4);
    EXPECT_EQ(got[0].length, 6u);
    EXPECT_EQ(got[1].type, 0);
    EXPECT_EQ(got[1].length, 0u);
    EXPECT_EQ(got[1].stream_id, 1);
    EXPECT_EQ(got[2].length, 100u);
    EXPECT_EQ(got[2].flags, 4);
    EXPECT_EQ(got[3].type, 9);
    // The reserved bit is not part of the stream id.
    EXPECT_EQ(got[4].stream_id, 5);
  }
}

TEST(FrameScanner, StopsWhenTheCallbackSaysSo) {
  std::string bytes = frame(0, 6, 0, 0) + frame(0, 6, 0, 0) + frame(0, 6, 0, 0);
  FrameScanner s(0);
  int seen = 0;
  bool ok = s.scan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                   [&](const FrameScanner::Header&) { return ++seen < 2; });
  EXPECT_FALSE(ok);
  EXPECT_EQ(seen, 2);
}

TEST(FrameScanner, LargePayloadsAreSkippedNotBuffered) {
  std::string bytes = frame(16384, 0, 1, 1) + frame(0, 8, 0, 0);
  auto got = scan_in_pieces(bytes, 4096, 0);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].type, 8);
}

}  // namespace
}  // namespace sy::http2
