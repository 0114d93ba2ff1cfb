// Parses `upgrade_configs:` lists (listeners and routes): which Upgrade protocols may pass.
#include <string_view>

#include "config/schema.h"

namespace sy::config {
namespace {

// RFC 9110 §7.8: a protocol is a token, optionally "/" and a version token ("HTTP/2.0").
bool valid_protocol(std::string_view s) {
  if (s.empty() || s.front() == '/' || s.back() == '/') return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~/").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c + 32);
  return s;
}

}  // namespace

std::vector<UpgradeConfig> parse_upgrade_configs(Diagnostics& d, const MapEntry& e,
                                                 const std::string& where) {
  std::vector<UpgradeConfig> out;
  const std::string what = "upgrade_configs in " + where;
  for (const YAML::Node& item : e.value) {
    UpgradeConfig u;
    u.loc = d.at(item);
    Fields f(d, item, u.loc, "upgrade_configs entry in " + where, {"upgrade_type", "enabled"});
    if (!f.is_map()) continue;
    f.boolean("enabled", &u.enabled);
    if (!f.string("upgrade_type", &u.upgrade_type, /*required=*/true)) continue;
    Location at = value_loc(d, *f.find("upgrade_type"));
    if (!valid_protocol(u.upgrade_type)) {
      d.error(at, "upgrade_type in " + what + ": '" + u.upgrade_type +
                      "' is not a protocol name (a token such as websocket)");
      continue;
    }
    u.upgrade_type = lower(u.upgrade_type);
    // h2c's upgrade is hop-by-hop (RFC 7540 §3.2): forwarding it would hand the client a raw
    // tunnel past every route. HTTP/2 is offered as prior knowledge instead.
    if (u.upgrade_type == "h2c") {
      d.error(at, "upgrade_type in " + what +
                      ": h2c upgrades are never forwarded; to accept h2c, add http2 to the "
                      "listener's protocols (prior knowledge)");
      continue;
    }
    bool duplicate = false;
    for (const UpgradeConfig& other : out)
      duplicate = duplicate || other.upgrade_type == u.upgrade_type;
    if (duplicate) {
      d.error(at, "upgrade_type in " + what + ": '" + u.upgrade_type + "' is listed twice");
      continue;
    }
    out.push_back(std::move(u));
  }
  return out;
}

}  // namespace sy::config
