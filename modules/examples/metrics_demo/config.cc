// Parses metrics_demo's config and defines its metrics.
#include "config.h"

namespace metrics_demo {

std::optional<Config> Config::parse(std::string_view json, std::string* err) {
  namespace js = sy::sdk::json;
  std::string why;
  auto obj = js::parse_flat_object(json, &why);
  std::optional<std::string> route;
  if (obj) route = js::take_string(*obj, "route", "default", &why);
  if (!route || !js::no_unknown_keys(*obj, "route", &why)) {
    *err = "metrics_demo: " + why + " (expected {\"route\": \"checkout\"})";
    return std::nullopt;
  }
  if (route->empty()) {
    *err = "metrics_demo: 'route' must not be empty";
    return std::nullopt;
  }
  Config c;
  c.route = std::move(*route);
  // The same name and labels give the same metric, so two listeners with the same route share
  // one set of numbers.
  const sy::sdk::Label labels[] = {{"route", c.route}};
  c.requests = sy::sdk::Metric::define(SY_COUNTER, "requests", labels);
  c.in_flight = sy::sdk::Metric::define(SY_GAUGE, "in_flight", labels);
  c.response_bytes = sy::sdk::Metric::define(SY_HISTOGRAM, "response_bytes", labels);
  if (!c.requests || !c.in_flight || !c.response_bytes) {
    *err = "metrics_demo: the host refused to define the metrics for route '" + c.route + "'";
    return std::nullopt;
  }
  return c;
}

}  // namespace metrics_demo
