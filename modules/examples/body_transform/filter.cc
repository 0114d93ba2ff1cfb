// body_transform's per-stream filter.
#include "filter.h"

namespace body_transform {

sy_filter_status_t Filter::on_response_headers(bool end_stream) {
  auto headers = response_headers();
  // Compressed bytes cannot be searched for text; such a body passes untouched.
  auto encoding = headers.get("content-encoding");
  if (end_stream || (encoding && *encoding != "identity")) {
    active_ = false;
    return SY_CONTINUE;
  }
  // The final length is unknown until the last chunk has passed, and the headers go first:
  // without Content-Length the host frames the body itself (chunked on HTTP/1.1).
  if (config_.from.size() != config_.to.size()) headers.remove("content-length");
  return SY_CONTINUE;
}

sy_filter_status_t Filter::on_response_body(bool end_stream) {
  if (!active_) return SY_CONTINUE;
  auto chunk = response_body(SY_BODY_CHUNK);
  std::string_view in = chunk.view();
  std::string out = rewriter_.feed(in, end_stream);
  if (out != in) chunk.replace(out);
  return SY_CONTINUE;
}

void Filter::on_stream_complete() {
  if (config_.replacements && rewriter_.replacements() > 0)
    config_.replacements->add(int64_t(rewriter_.replacements()));
}

}  // namespace body_transform
