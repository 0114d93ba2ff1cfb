// metrics_demo's config: the route label its metrics carry, and the metrics themselves.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <switchyard/sdk.hpp>

namespace metrics_demo {

struct Config {
  std::string route;
  // Defined at config time, with the label {route="<route>"}.
  std::optional<sy::sdk::Metric> requests;        // counter
  std::optional<sy::sdk::Metric> in_flight;       // gauge
  std::optional<sy::sdk::Metric> response_bytes;  // histogram

  // {"route": "checkout"}; route defaults to "default".
  static std::optional<Config> parse(std::string_view json, std::string* err);
};

}  // namespace metrics_demo
