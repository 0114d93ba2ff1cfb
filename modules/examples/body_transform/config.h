// body_transform's config: which bytes to replace with which in response bodies.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <switchyard/sdk.hpp>

namespace body_transform {

struct Config {
  std::string from;  // never empty
  std::string to;
  std::optional<sy::sdk::Metric> replacements;  // counter "replacements"

  // {"from": "hello", "to": "HELLO"}: FROM required, TO defaults to "" (delete FROM).
  static std::optional<Config> parse(std::string_view json, std::string* err);
};

}  // namespace body_transform
