// Fuzz target: HTTP/1 responses as an upstream sends them, through the client-side codec.
#include "tests/fuzz/http1_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return sy::fuzz::run_http1(HTTP_RESPONSE, data, size);
}
