// Internal to config/: the per-section parsers that turn YAML nodes into config objects.
#pragma once

#include <yaml-cpp/yaml.h>

#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/yaml_util.h"

namespace sy::config {

// A name written in the file together with where, for checks that need the whole file first
// (a route may name a cluster defined further down; names must be unique).
struct NameAt {
  std::string name;
  Location loc;
};

// State shared by the section parsers while one file is read.
struct ParseContext {
  Diagnostics& d;
  std::vector<NameAt> cluster_refs;  // every cluster named by a route or tcp_proxy
};

// Each parser reports its own errors and returns what it could read; the caller discards the
// result when any error was reported. LOC is where N sits (its key, when N is empty).
Listener parse_listener(ParseContext& ctx, const YAML::Node& n, const Location& loc, NameAt* name);
// FILTER_NAMES are the module and factory names of the listener's filters, which per_filter
// keys must refer to. INDEX is the route's position, for its default name.
Route parse_route(ParseContext& ctx, const YAML::Node& n, const Location& loc, size_t index,
                  const std::set<std::string>& filter_names, NameAt* name);
Cluster parse_cluster(ParseContext& ctx, const YAML::Node& n, const Location& loc, NameAt* name);
// FOR_LISTENER: a listener needs a certificate and key and has no SNI to send.
Tls parse_tls(Diagnostics& d, const MapEntry& e, const std::string& what, bool for_listener);

// An `upgrade_configs:` list (E is its entry, already checked to be a list); WHERE is
// "listener" or "route", for messages.
std::vector<UpgradeConfig> parse_upgrade_configs(Diagnostics& d, const MapEntry& e,
                                                 const std::string& where);

// A `metadata:` block (E) of a route, listener or cluster (WHERE, for messages): namespace ->
// JSON object text.
void parse_metadata(Diagnostics& d, const MapEntry& e, const std::string& where,
                    std::map<std::string, std::string>* out);
// access_log's `fields:` block (E): extra members of each line.
void parse_access_log_fields(Diagnostics& d, const MapEntry& e, std::vector<AccessLogField>* out);

// Reports the later of any two equal names ("duplicate KIND name 'x'").
void check_unique(Diagnostics& d, const std::vector<NameAt>& names, const std::string& kind);

}  // namespace sy::config
