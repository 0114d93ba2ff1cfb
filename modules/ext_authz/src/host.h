// The host's function table and this generation's module handle, set by the entry function.
// Each generation of the .so has its own copy (the module is loaded RTLD_LOCAL).
#pragma once

#include <switchyard/module.h>

#include <optional>
#include <string>
#include <string_view>
#include <switchyard/json.hpp>

namespace ext_authz {

// Configs and metadata arrive as JSON text; the SDK's reader reads them.
namespace json = sy::sdk::json;

extern const sy_host_t* g_host;
extern sy_module_t* g_module;

inline sy_str_t str(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view view(sy_str_t s) {
  return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view();
}

// A copy of attribute PATH of S (the host reuses the view's memory on the next call).
inline std::optional<std::string> attribute(sy_stream_t* s, std::string_view path) {
  sy_str_t v{};
  if (g_host->attribute_get(s, str(path), &v) != SY_OK) return std::nullopt;
  return std::string(view(v));
}

void log(sy_log_level_t level, std::string_view message);

}  // namespace ext_authz
