#include "mutate.h"

#include <algorithm>

#include "host.h"

namespace ext_authz {

bool apply_header(sy_stream_t* s, sy_header_kind_t kind, const HeaderOp& op) {
  if (op.name.empty()) return false;
  size_t n = g_host->header_count(s, kind, str(op.name));
  switch (op.action) {
    case HeaderOp::kSet:
      return g_host->header_set(s, kind, str(op.name), str(op.value)) == SY_OK;
    case HeaderOp::kAdd:
      return g_host->header_add(s, kind, str(op.name), str(op.value)) == SY_OK;
    case HeaderOp::kAddIfAbsent:
      return n == 0 && g_host->header_add(s, kind, str(op.name), str(op.value)) == SY_OK;
    case HeaderOp::kOverwriteIfExists:
      return n > 0 && g_host->header_set(s, kind, str(op.name), str(op.value)) == SY_OK;
    case HeaderOp::kAppend: {
      if (n == 0) return g_host->header_add(s, kind, str(op.name), str(op.value)) == SY_OK;
      // Envoy's gRPC client joins an appended value onto the existing header with a comma.
      std::string joined;
      for (size_t i = 0; i < n; ++i) {
        sy_str_t v{};
        if (g_host->header_get(s, kind, str(op.name), i, &v) != SY_OK) continue;
        if (!joined.empty()) joined += ",";
        joined += view(v);
      }
      joined += "," + op.value;
      return g_host->header_set(s, kind, str(op.name), str(joined)) == SY_OK;
    }
  }
  return false;
}

std::string rewrite_query(std::string_view path,
                          const std::vector<std::pair<std::string, std::string>>& set,
                          const std::vector<std::string>& remove) {
  size_t q = path.find('?');
  std::string_view base = path.substr(0, q);
  std::string_view query = q == std::string_view::npos ? "" : path.substr(q + 1);
  std::string_view fragment;
  if (size_t h = query.find('#'); h != std::string_view::npos) {
    fragment = query.substr(h);
    query = query.substr(0, h);
  }
  std::vector<std::pair<std::string, std::string>> params;  // key, "=value" or ""
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    if (!item.empty()) {
      size_t eq = item.find('=');
      params.emplace_back(std::string(item.substr(0, eq)),
                          eq == std::string_view::npos ? "" : std::string(item.substr(eq)));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  // Plain names, not a structured binding: clang before 16 cannot capture one.
  for (const auto& kv : set) {
    const std::string& k = kv.first;
    const std::string& v = kv.second;
    auto first = std::find_if(params.begin(), params.end(), [&](auto& p) { return p.first == k; });
    if (first == params.end()) {
      params.emplace_back(k, "=" + v);
      continue;
    }
    first->second = "=" + v;
    params.erase(std::remove_if(first + 1, params.end(), [&](auto& p) { return p.first == k; }),
                 params.end());
  }
  for (const std::string& k : remove)
    std::erase_if(params, [&](const auto& p) { return p.first == k; });
  std::string out(base);
  for (size_t i = 0; i < params.size(); ++i) {
    out += i == 0 ? "?" : "&";
    out += params[i].first + params[i].second;
  }
  out += fragment;
  return out;
}

}  // namespace ext_authz
