// A test-only module (build/tests/abi/libsy_fx_sdk_callout.so) on the C++ SDK: a gRPC client
// over a streaming callout with sy::sdk::CalloutStream and sy::sdk::grpc framing
// (test_stream_callout.py). The request body's lines go as messages to the cluster named by
// x-cluster at path x-callout-path, all at once; the reply is the answers, one a line, with
// x-grpc-status from the trailers (or x-callout-failure).
#include <memory>
#include <string>
#include <switchyard/grpc_framing.hpp>
#include <switchyard/sdk.hpp>

namespace {

namespace sdk = sy::sdk;

class Call final : public sdk::CalloutStream {
 public:
  // S: the stream this callout belongs to, valid inside the callout's events.
  explicit Call(sy_stream_t* s) : s_(s) {}

 protected:
  void on_data(std::string_view data, bool) override {
    if (!deframer_.feed(data, [&](std::string_view m, bool) { (answers_ += m) += '\n'; }))
      finish(502, "deframe: " + deframer_.error());
  }
  // grpc-status comes in the trailers, or in the head of a trailers-only response.
  void on_headers(std::span<const sy_header_t> headers, bool) override { read_status(headers); }
  void on_trailers(std::span<const sy_header_t> trailers) override { read_status(trailers); }
  void on_complete() override { finish(deframer_.idle() ? 200 : 502, status_); }
  void on_failure(sy_callout_failure_t reason, std::string_view details) override {
    finish(502, "failure " + std::to_string(int(reason)) + ": " + std::string(details));
  }

 private:
  void finish(uint32_t code, const std::string& status) {
    sy_header_t h[] = {{sdk::to_str("x-grpc-status"), sdk::to_str(status)}};
    sdk::host()->send_local_reply(s_, code, h, 1, sdk::to_str(answers_), sdk::to_str("fx_sdk"));
  }

  void read_status(std::span<const sy_header_t> fields) {
    for (const auto& f : fields)
      if (sdk::to_view(f.name) == "grpc-status") status_ = sdk::to_view(f.value);
  }

  sy_stream_t* s_;
  sdk::grpc::Deframer deframer_;
  std::string answers_;
  std::string status_ = "none";
};

class GrpcClient final : public sdk::HttpFilter {
 public:
  sy_filter_status_t on_request_headers(bool end_stream) override {
    return end_stream ? go({}) : SY_STOP_AND_BUFFER;
  }
  sy_filter_status_t on_request_body(bool end_stream) override {
    if (!end_stream) return SY_STOP_AND_BUFFER;
    return go(std::string(request_body(SY_BODY_BUFFERED).view()));
  }

 private:
  sy_filter_status_t go(const std::string& body) {
    std::string cluster(request_headers().get("x-cluster").value_or("grpc"));
    std::string path(request_headers().get("x-callout-path").value_or("/"));
    call_ = std::make_unique<Call>(stream());
    sy_status_t rc = call_->start(stream(), nullptr, cluster,
                                  {{":method", "POST"},
                                   {":path", path},
                                   {"content-type", "application/grpc"},
                                   {"te", "trailers"}});
    if (rc != SY_OK) {
      local_reply(404, "no callout\n");
      return SY_STOP;
    }
    // All messages in one write: the deframer on the far side splits them again.
    std::string frames;
    size_t start = 0;
    while (start <= body.size() && !body.empty()) {
      size_t nl = body.find('\n', start);
      if (nl == std::string::npos) nl = body.size();
      sdk::grpc::append_frame(frames, std::string_view(body).substr(start, nl - start));
      start = nl + 1;
    }
    call_->send(frames, true);
    return SY_STOP;
  }

  // Destroyed with the filter: resets a callout still open (the handle is valid until then).
  std::unique_ptr<Call> call_;
};

}  // namespace

SY_SDK_MODULE("sdk_callout", "1.0.0", sdk::FilterFactory<GrpcClient>("sdk_callout"))
