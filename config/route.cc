// Parses a listener's `routes:` entries: match, target (cluster or direct_response), overrides.
#include <arpa/inet.h>

#include <string_view>

#include "config/http_syntax.h"
#include "config/schema.h"
#include "config/yaml_json.h"

namespace sy::config {
namespace {

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c + 32);
  return s;
}

// Lower-cases a `hosts:` entry into the form the router compares against: no port, no
// brackets around IPv6, no trailing dot. Returns an error message, or "" when it is fine.
std::string normalize_host(std::string* host) {
  std::string h = lower(*host);
  if (h == "*") {
    *host = h;
    return "";
  }
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.find(':') != std::string::npos) {
    in6_addr a6;
    if (inet_pton(AF_INET6, h.c_str(), &a6) != 1)
      return "hosts are matched without the port; write '" + h.substr(0, h.rfind(':')) + "'";
    *host = h;
    return "";
  }
  // The wildcard is split off first, so that "*." is seen as a wildcard with no domain.
  bool wildcard = h.size() >= 2 && h[0] == '*' && h[1] == '.';
  if (h.size() > (wildcard ? 2u : 1u) && h.back() == '.') h.pop_back();
  std::string_view name = h;
  if (wildcard) name.remove_prefix(2);
  if (name.empty()) return "expected a host name like example.com or *.example.com";
  for (char c : name) {
    if (c == '*') return "a wildcard is only allowed as a leading '*.', as in *.example.com";
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) return "'" + h + "' is not a host name";
  }
  *host = h;
  return "";
}

HeaderMatcher parse_header_matcher(Diagnostics& d, const YAML::Node& n) {
  HeaderMatcher h;
  Fields f(d, n, d.at(n), "header matcher",
           {"name", "exact", "prefix", "regex", "present", "invert"});
  if (!f.is_map()) return h;
  if (f.string("name", &h.name, /*required=*/true)) {
    if (!is_header_name(h.name))
      d.error(value_loc(d, *f.find("name")),
              "name in header matcher: '" + h.name + "' is not a valid header name");
    h.name = lower(h.name);
  }
  const MapEntry* kind = f.exactly_one({"exact", "prefix", "regex", "present"}, false);
  if (kind == nullptr) return h;
  if (kind->key == "present") {
    if (f.boolean("present", &h.present) && !h.present)
      d.error(value_loc(d, *kind),
              "present in header matcher: only 'present: true' is meaningful; match a missing "
              "header with 'present: true' and 'invert: true'");
  } else {
    std::string v;
    // An empty exact value is a real match (the header is there and empty); an empty prefix
    // or regex would be a silent "present", so ask for that spelling instead.
    if (f.string(kind->key, &v, false, /*allow_empty=*/kind->key == "exact")) {
      if (kind->key == "exact") h.exact = v;
      if (kind->key == "prefix") h.prefix = v;
      if (kind->key == "regex") h.regex = v;
    }
  }
  f.boolean("invert", &h.invert);
  return h;
}

RouteMatch parse_match(Diagnostics& d, const MapEntry& e) {
  RouteMatch m;
  Fields f(d, e.value, value_loc(d, e), "route match",
           {"prefix", "path", "regex", "hosts", "host", "headers"});
  if (!f.is_map()) return m;
  // None of prefix/path/regex means every path: `match: {}` is the catch-all route.
  if (const MapEntry* p = f.exactly_one({"prefix", "path", "regex"}, /*allow_none=*/true)) {
    std::string v;
    if (f.string(p->key, &v)) {
      if (p->key != "regex" && v[0] != '/') {
        d.error(value_loc(d, *p), p->key + " in route match: must start with '/', got '" + v + "'");
      }
      if (p->key == "prefix") m.prefix = v;
      if (p->key == "path") m.path = v;
      if (p->key == "regex") m.regex = v;
    }
  }
  if (const MapEntry* h = f.exactly_one({"hosts", "host"}, /*allow_none=*/true)) {
    std::vector<std::string> hosts;
    std::vector<Location> locs;
    if (h->key == "host") {
      std::string one;
      if (f.string("host", &one)) {
        hosts.push_back(one);
        locs.push_back(value_loc(d, *h));
      }
    } else if (f.string_list("hosts", &hosts)) {
      if (hosts.empty()) d.error(value_loc(d, *h), "hosts in route match: must not be empty");
      for (const YAML::Node& item : h->value) locs.push_back(d.at(item));
    }
    for (size_t i = 0; i < hosts.size(); ++i) {
      std::string err = normalize_host(&hosts[i]);
      if (!err.empty()) d.error(locs[i], h->key + " in route match: " + err);
    }
    m.hosts = std::move(hosts);
  }
  if (const MapEntry* hs = f.list("headers")) {
    for (const YAML::Node& item : hs->value) m.headers.push_back(parse_header_matcher(d, item));
  }
  return m;
}

DirectResponse parse_direct(Diagnostics& d, const MapEntry& e) {
  DirectResponse r;
  Fields f(d, e.value, value_loc(d, e), "direct_response", {"status", "body", "headers"});
  if (!f.is_map()) return r;
  if (f.require("status")) {
    uint32_t status = 0;
    if (f.uint32("status", &status, 100, 599)) r.status = int(status);
  }
  f.string("body", &r.body, false, /*allow_empty=*/true);
  if (const MapEntry* hs = f.list("headers")) {
    for (const YAML::Node& item : hs->value) {
      HeaderValue hv;
      Fields hf(d, item, d.at(item), "direct_response header", {"name", "value"});
      if (!hf.is_map()) continue;
      if (hf.string("name", &hv.name, true) && !is_header_name(hv.name))
        d.error(value_loc(d, *hf.find("name")),
                "name in direct_response header: '" + hv.name + "' is not a valid header name");
      if (hf.string("value", &hv.value, true, /*allow_empty=*/true) &&
          !is_safe_header_value(hv.value))
        d.error(value_loc(d, *hf.find("value")),
                "value in direct_response header: must not contain CR, LF or NUL");
      hv.name = lower(hv.name);
      r.headers.push_back(std::move(hv));
    }
  }
  return r;
}

// per_filter's keys are filter names rather than a fixed set, so it is walked here instead of
// through Fields, with the same checks: string keys, no duplicates, and names that exist.
void parse_per_filter(Diagnostics& d, const MapEntry& e, const std::set<std::string>& filter_names,
                      Route* r) {
  if (!e.value.IsMap()) {
    d.error(value_loc(d, e), "per_filter in route: expected a map, got " + describe(e.value));
    return;
  }
  std::set<std::string> seen;
  for (auto it = e.value.begin(); it != e.value.end(); ++it) {
    YAML::Node key = it->first;
    YAML::Node value = it->second;
    if (!key.IsScalar()) {
      d.error(d.at(key), "per_filter in route: keys must be filter names, got " + describe(key));
      continue;
    }
    const std::string& name = key.Scalar();
    if (!seen.insert(name).second) {
      d.error(d.at(key), "duplicate key '" + name + "' in per_filter");
      continue;
    }
    if (filter_names.count(name) == 0) {
      d.error(d.at(key), "per_filter in route: '" + name + "' is not a filter of this listener");
      continue;
    }
    Route::PerFilter pf;
    if (!yaml_to_json(d, value, "per_filter " + name, &pf.json)) continue;
    // Exactly `{disabled: true}` (an unquoted YAML true) turns the filter off for the route;
    // anything else, `disabled` with other keys included, is the module's to read.
    if (value.IsMap() && value.size() == 1 && value["disabled"] && value["disabled"].IsScalar() &&
        value["disabled"].Tag() != "!") {
      const std::string& v = value["disabled"].Scalar();
      pf.disabled = v == "true" || v == "True" || v == "TRUE";
    }
    r->per_filter[name] = std::move(pf);
  }
}

}  // namespace

Route parse_route(ParseContext& ctx, const YAML::Node& n, const Location& loc, size_t index,
                  const std::set<std::string>& filter_names, NameAt* name) {
  Diagnostics& d = ctx.d;
  Route r;
  r.loc = loc;
  r.name = "route" + std::to_string(index);
  *name = {r.name, loc};
  Fields f(d, n, loc, "route",
           {"name", "match", "cluster", "direct_response", "timeout", "per_filter",
            "upgrade_configs", "metadata"});
  if (!f.is_map()) return r;

  if (f.string("name", &r.name)) *name = {r.name, value_loc(d, *f.find("name"))};
  if (const MapEntry* m = f.require("match")) r.match = parse_match(d, *m);

  const MapEntry* target = f.exactly_one({"cluster", "direct_response"}, /*allow_none=*/false);
  if (target != nullptr && target->key == "cluster") {
    if (f.string("cluster", &r.cluster))
      ctx.cluster_refs.push_back({r.cluster, value_loc(d, *target)});
  } else if (target != nullptr) {
    r.direct = parse_direct(d, *target);
  }

  Duration timeout{};
  if (f.duration("timeout", &timeout)) {
    if (r.direct) {
      d.error(d.at(f.find("timeout")->key_node),
              "timeout in route: a direct_response route has no upstream to time out");
    } else {
      r.timeout = timeout;
    }
  }

  if (const MapEntry* pf = f.find("per_filter")) parse_per_filter(d, *pf, filter_names, &r);
  if (const MapEntry* m = f.find("metadata")) parse_metadata(d, *m, "route", &r.metadata);
  if (const MapEntry* u = f.list("upgrade_configs")) {
    if (r.direct)
      d.error(d.at(u->key_node),
              "upgrade_configs in route: a direct_response route has no upstream to upgrade to");
    else
      r.upgrade_configs = parse_upgrade_configs(d, *u, "route");
  }
  return r;
}

}  // namespace sy::config
