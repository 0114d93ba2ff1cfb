// Helpers shared by the config tests: load YAML written inline and read back its errors.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace sy::config::testutil {

// Test YAML is written as R"(\n...)": dropping the first newline makes line 1 of the file the
// first line after R"(, so the line numbers in expectations can be read off the source.
inline LoadResult load(std::string_view yaml) {
  std::string text(yaml);
  if (!text.empty() && text[0] == '\n') text.erase(0, 1);
  return load_string(text, "t.yaml");
}

inline std::vector<std::string> errors_of(const LoadResult& r) {
  std::vector<std::string> out;
  for (const Error& e : r.errors) out.push_back(e.str());
  return out;
}

// A loaded config, failing the test with every error when there were any.
inline std::shared_ptr<const Config> ok(std::string_view yaml) {
  LoadResult r = load(yaml);
  EXPECT_TRUE(r.errors.empty()) << ::testing::PrintToString(errors_of(r));
  EXPECT_EQ(r.config != nullptr, r.errors.empty());
  return r.config;
}

// The single error of a config that must fail with exactly one.
inline std::string one_error(std::string_view yaml) {
  LoadResult r = load(yaml);
  EXPECT_EQ(r.config, nullptr);
  EXPECT_EQ(r.errors.size(), 1u) << ::testing::PrintToString(errors_of(r));
  return r.errors.empty() ? "" : r.errors[0].str();
}

}  // namespace sy::config::testutil
