// Replaces a byte pattern in a body that arrives as a sequence of chunks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace body_transform {

// Matches that straddle two chunks are found by holding back the last from.size() - 1 bytes of
// each chunk (they may be the start of a match) and putting them in front of the next one.
class Rewriter {
 public:
  // FROM and TO must outlive the rewriter (they belong to the filter's config).
  Rewriter(std::string_view from, std::string_view to) : from_(from), to_(to) {}

  // The bytes to send on in place of CHUNK. With LAST, everything held back is flushed.
  std::string feed(std::string_view chunk, bool last);
  uint64_t replacements() const { return replacements_; }

 private:
  std::string_view from_, to_;
  std::string carry_;
  uint64_t replacements_ = 0;
};

}  // namespace body_transform
