// metrics_demo's per-stream filter.
#include "filter.h"

namespace metrics_demo {

sy_filter_status_t Filter::on_request_headers(bool) {
  config_.requests->add(1);
  config_.in_flight->add(1);
  in_flight_ = true;
  return SY_CONTINUE;
}

sy_filter_status_t Filter::on_response_body(bool) {
  response_bytes_ += response_body(SY_BODY_CHUNK).size();
  return SY_CONTINUE;
}

void Filter::on_stream_complete() {
  config_.response_bytes->record(response_bytes_);
  leave();
}

// Also from the destructor: the gauge must come back down even for a stream that ended in a way
// that skipped on_stream_complete, or it would drift upwards forever.
Filter::~Filter() { leave(); }

void Filter::leave() {
  if (!in_flight_) return;
  in_flight_ = false;
  config_.in_flight->add(-1);
}

}  // namespace metrics_demo
