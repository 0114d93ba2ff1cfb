// Fixture "fx_throws" (C++ SDK): throws from the callback a request's path names, to check that
// the SDK turns it into a 500, a count in callback_exceptions, and a log line.
#include <stdexcept>
#include <string>
#include <string_view>
#include <switchyard/sdk.hpp>

namespace {

class Thrower : public sy::sdk::HttpFilter {
 public:
  // The config is the JSON text: {"throw_in": "constructor"} makes every stream's filter fail.
  explicit Thrower(const std::string& config) {
    if (config.find("constructor") != std::string::npos)
      throw std::runtime_error("fx_throws: thrown from the constructor");
  }

  // Paths: /throw/request_headers, /throw/response_headers, /throw/response_body.
  sy_filter_status_t on_request_headers(bool) override {
    path_ = std::string(request_headers().get(":path").value_or(""));
    if (path_ == "/throw/request_headers")
      throw std::runtime_error("fx_throws: thrown from on_request_headers");
    return SY_CONTINUE;
  }
  sy_filter_status_t on_response_headers(bool) override {
    if (path_ == "/throw/response_headers") throw std::logic_error("fx_throws: from headers");
    response_headers().set("x-throws", "no");
    return SY_CONTINUE;
  }
  sy_filter_status_t on_response_body(bool) override {
    if (path_.starts_with("/throw/response_body")) throw 42;  // not even a std::exception
    return SY_CONTINUE;
  }

 private:
  std::string path_;
};

}  // namespace

SY_SDK_MODULE("fx_throws", "1.0.0", sy::sdk::FilterFactory<Thrower>("fx_throws"))
