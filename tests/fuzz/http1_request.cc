// Fuzz target: HTTP/1 requests as a client sends them, through the server-side codec.
#include "tests/fuzz/http1_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sy::fuzz::run_http1(HTTP_REQUEST, data, size);
}
