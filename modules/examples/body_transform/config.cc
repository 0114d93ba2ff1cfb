// Parses and validates body_transform's config.
#include "config.h"

namespace body_transform {

// A match is looked for across chunk borders by holding back from.size() - 1 bytes, so the
// pattern's length bounds what a stream may hold back.
constexpr size_t kMaxFrom = 4096;

std::optional<Config> Config::parse(std::string_view json, std::string* err) {
  namespace json_ns = sy::sdk::json;
  std::string why;
  auto obj = json_ns::parse_flat_object(json, &why);
  Config c;
  std::optional<std::string> from, to;
  if (obj) from = json_ns::take_string(*obj, "from", "", &why);
  if (from) to = json_ns::take_string(*obj, "to", "", &why);
  if (!to || !json_ns::no_unknown_keys(*obj, "from, to", &why)) {
    *err = "body_transform: " + why + " (expected {\"from\": \"hello\", \"to\": \"HELLO\"})";
    return std::nullopt;
  }
  if (from->empty()) {
    *err = "body_transform: 'from' is required and must not be empty";
    return std::nullopt;
  }
  if (from->size() > kMaxFrom) {
    *err = "body_transform: 'from' is " + std::to_string(from->size()) + " bytes; at most " +
           std::to_string(kMaxFrom) + " are allowed";
    return std::nullopt;
  }
  c.from = std::move(*from);
  c.to = std::move(*to);
  c.replacements = sy::sdk::Metric::define(SY_COUNTER, "replacements");
  return c;
}

}  // namespace body_transform
