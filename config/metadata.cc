// Parses the `metadata:` blocks of routes, listeners and clusters (Envoy's filter_metadata
// shape, for modules to read) and the access log's `fields:`, which name metadata and filter
// state to log.
#include <set>

#include "config/schema.h"
#include "config/yaml_json.h"

namespace sy::config {

void parse_metadata(Diagnostics& d, const MapEntry& e, const std::string& where,
                    std::map<std::string, std::string>* out) {
  const std::string what = "metadata in " + where;
  if (!e.value.IsMap()) {
    d.error(value_loc(d, e), what + ": expected a map of namespaces, got " + describe(e.value));
    return;
  }
  std::set<std::string> seen;
  for (auto it = e.value.begin(); it != e.value.end(); ++it) {
    YAML::Node key = it->first;
    YAML::Node value = it->second;
    if (!key.IsScalar() || key.Scalar().empty()) {
      d.error(d.at(key), what + ": keys must be namespace names, got " + describe(key));
      continue;
    }
    const std::string& ns = key.Scalar();
    if (!seen.insert(ns).second) {
      d.error(d.at(key), "duplicate key '" + ns + "' in " + what);
      continue;
    }
    // Each namespace is a JSON object, as a module reads it with metadata_ns_get.
    if (!value.IsMap()) {
      d.error(value.IsNull() ? d.at(key) : d.at(value),
              what + ": namespace '" + ns + "' must be a map, got " + describe(value));
      continue;
    }
    std::string json;
    if (yaml_to_json(d, value, what + " namespace " + ns, &json)) (*out)[ns] = std::move(json);
  }
}

namespace {

// "%DYNAMIC_METADATA(ns:key)%", "%DYNAMIC_METADATA(ns)%" or "%FILTER_STATE(key)%", as Envoy's
// access-log format spells them.
bool read_operator(const std::string& text, AccessLogField* f) {
  static const struct {
    const char* prefix;
    AccessLogField::Source source;
  } kOperators[] = {{"%DYNAMIC_METADATA(", AccessLogField::Source::kDynamicMetadata},
                    {"%FILTER_STATE(", AccessLogField::Source::kFilterState}};
  for (const auto& op : kOperators) {
    std::string_view p = op.prefix;
    if (text.size() <= p.size() + 2 || text.compare(0, p.size(), p) != 0 ||
        text.compare(text.size() - 2, 2, ")%") != 0)
      continue;
    f->source = op.source;
    f->key = text.substr(p.size(), text.size() - p.size() - 2);
    bool bad_key = f->key.empty() || f->key.find_first_of("()%") != std::string::npos ||
                   (op.source == AccessLogField::Source::kDynamicMetadata &&
                    (f->key.front() == ':' || f->key.back() == ':'));
    return !bad_key;
  }
  return false;
}

}  // namespace

void parse_access_log_fields(Diagnostics& d, const MapEntry& e, std::vector<AccessLogField>* out) {
  // The members every line already has: a field may not hide one of them.
  static const std::set<std::string> kBuiltIn = {
      "time",     "listener", "method",        "authority",  "path",
      "protocol", "status",   "bytes_in",      "bytes_out",  "duration_ms",
      "route",    "cluster",  "upstream_host", "request_id", "response_flags",
      "details",  "client",   "tls_version",   "sni"};
  if (!e.value.IsMap()) {
    d.error(value_loc(d, e),
            "fields in access_log: expected a map of names to operators, got " + describe(e.value));
    return;
  }
  std::set<std::string> seen;
  for (auto it = e.value.begin(); it != e.value.end(); ++it) {
    YAML::Node key = it->first;
    AccessLogField f;
    f.loc = d.at(it->second.IsNull() ? key : it->second);
    if (!key.IsScalar() || key.Scalar().empty()) {
      d.error(d.at(key), "fields in access_log: keys must be field names, got " + describe(key));
      continue;
    }
    f.name = key.Scalar();
    if (kBuiltIn.count(f.name)) {
      d.error(d.at(key), "fields in access_log: '" + f.name + "' is a field every line has");
      continue;
    }
    if (!seen.insert(f.name).second) {
      d.error(d.at(key), "duplicate key '" + f.name + "' in access_log fields");
      continue;
    }
    std::string text;
    if (!read_string(d, it->second, f.loc, "field " + f.name + " in access_log", &text)) continue;
    if (!read_operator(text, &f)) {
      d.error(f.loc, "field " + f.name +
                         " in access_log: expected %DYNAMIC_METADATA(namespace:key)%, "
                         "%DYNAMIC_METADATA(namespace)% or %FILTER_STATE(key)%, got '" +
                         text + "'");
      continue;
    }
    out->push_back(std::move(f));
  }
}

}  // namespace sy::config
