// The wasm filter's config: Envoy's PluginConfig fields (name, root_id, vm_config, configuration,
// failure_policy), plus Switchyard's limits. Parsed and validated on the main thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sywasm {

enum class FailurePolicy { kFailClosed, kFailOpen, kFailReload };

struct PluginConfig {
  std::string name;
  std::string root_id;
  std::string vm_id;
  std::string runtime;    // accepted for Envoy compatibility; every runtime runs on Wasmtime
  std::string code;       // the module's bytes
  std::string code_path;  // the file it came from, if any (for messages)
  std::string vm_configuration;
  std::string plugin_configuration;
  std::vector<std::pair<std::string, std::string>> env;  // WASI environment
  FailurePolicy failure_policy = FailurePolicy::kFailClosed;
  // Switchyard's own keys: the longest a single callback may run before it is stopped, the
  // most linear memory one VM may grow to, and where compiled code is cached.
  uint64_t callback_deadline_ms = 1000;
  uint64_t memory_limit_bytes = 512ull << 20;
  std::string cache_dir;
  // Re-read code.local.filename when it changes (new streams get the new version).
  bool watch = false;
};

// Parses the filter's `config:` JSON. Accepts the PluginConfig itself or Envoy's whole `Wasm`
// filter message ({config: {...}}). On failure returns false with ERR saying what and where.
bool parse_plugin_config(std::string_view json, PluginConfig* out, std::string* err);

const char* failure_policy_name(FailurePolicy p);

}  // namespace sywasm
