// Streaming pattern replacement for body_transform.
#include "rewriter.h"

namespace body_transform {

std::string Rewriter::feed(std::string_view chunk, bool last) {
  std::string buf = std::move(carry_);
  buf.append(chunk);
  carry_.clear();
  // A match must start before LIMIT to be decided now: a later start could still be completed
  // by the next chunk.
  size_t limit = last ? buf.size() : buf.size() - std::min(buf.size(), from_.size() - 1);
  std::string out;
  out.reserve(buf.size());
  size_t i = 0;
  while (i < limit) {
    size_t at = buf.find(from_, i);
    if (at == std::string::npos || at >= limit) {
      out.append(buf, i, limit - i);
      i = limit;
      break;
    }
    out.append(buf, i, at - i);
    out.append(to_);
    i = at + from_.size();
    ++replacements_;
  }
  // What is left (past LIMIT, or past a match that ended there) waits for the next chunk.
  if (i < buf.size()) carry_.assign(buf, i, std::string::npos);
  return out;
}

}  // namespace body_transform
