// Converts a YAML subtree (a filter's `config:` block) to JSON text for the module ABI.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <string_view>

#include "config/yaml_util.h"

namespace sy::config {

// Writes N as compact JSON to *OUT. Maps become objects, sequences arrays. A quoted scalar is
// always a string; a plain one becomes null, a boolean or a number when YAML 1.2's core schema
// reads it so ("8080", "0x1f", "1.5e3", "true", "~"), else a string. Reports (at the offending
// node, naming WHAT) what JSON cannot say: non-string keys, duplicate keys, .inf/.nan, and
// alias-built trees too deep or too big. Returns false, with *OUT unspecified, on any error.
bool yaml_to_json(Diagnostics& d, const YAML::Node& n, std::string_view what, std::string* out);

}  // namespace sy::config
