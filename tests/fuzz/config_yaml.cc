// Fuzz target: the YAML config loader (config/), from text to validated config or errors.
// Whatever the text, the loader returns (never throws, never crashes) and every error it reports
// carries the file and a position, as the operator needs to find it.
#include <string>

#include "config/config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  sy::config::LoadResult r = sy::config::load_string(text, "fuzz.yaml");
  FUZZ_CHECK((r.config != nullptr) == r.errors.empty());
  for (const auto& e : r.errors) {
    FUZZ_CHECK(!e.message.empty());
    FUZZ_CHECK(e.str().rfind("fuzz.yaml:", 0) == 0);
  }
  return 0;
}
