// Fuzz target: the Wasm module's reader of Proxy-Wasm serialized header maps
// (modules/wasm/src/abi_env.cc, parse_pairs), which reads what a guest wrote into its own memory
// for proxy_set_header_map_pairs, proxy_send_local_response, proxy_http_call and
// proxy_grpc_call: count, (key length, value length) per pair, then each key and value with a
// NUL after it. The guest is untrusted: any byte string must be refused or read within bounds.
// Whatever is accepted, written again in the same format, reads back the same.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hostcall.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

std::string serialize(const Pairs& kv) {
  std::string out;
  auto u32 = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  u32(uint32_t(kv.size()));
  for (const auto& [k, v] : kv) u32(uint32_t(k.size())), u32(uint32_t(v.size()));
  for (const auto& [k, v] : kv) out.append(k).append(1, '\0').append(v).append(1, '\0');
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Pairs kv;
  if (!sywasm::parse_pairs(in, &kv)) return 0;
  // Every pair costs its lengths, its bytes and two NULs: nothing was read from past the end.
  size_t need = kv.empty() ? 0 : 4;
  for (const auto& [k, v] : kv) need += 8 + k.size() + v.size() + 2;
  FUZZ_CHECK(need <= size);
  Pairs again;
  FUZZ_CHECK(sywasm::parse_pairs(serialize(kv), &again));
  FUZZ_CHECK(again == kv);
  return 0;
}
