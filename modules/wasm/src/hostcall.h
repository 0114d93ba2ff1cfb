// The host functions a Proxy-Wasm module imports: a table of definitions, one trampoline.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vm.h"

namespace sywasm {

// Proxy-Wasm status codes (proxy_status_t), as the SDKs expect them.
enum : int32_t {
  kOk = 0,
  kNotFound = 1,
  kBadArgument = 2,
  kSerializationFailure = 3,
  kParseFailure = 4,
  kInvalidMemoryAccess = 6,
  kEmpty = 7,
  kCasMismatch = 8,
  kInternalFailure = 10,
  kUnimplemented = 12,
};

using HostFn = int64_t (*)(Vm& vm, const wasmtime_val_t* a);

struct HostDef {
  const char* module;
  const char* name;
  const char* params;   // one letter per parameter: i (i32) or I (i64)
  const char* results;  // "" or "i"
  HostFn fn;
};

void add_env_defs(std::vector<HostDef>* out);
void add_callout_defs(std::vector<HostDef>* out);
void add_wasi_defs(std::vector<HostDef>* out);
void add_grpc_defs(std::vector<HostDef>* out);
void add_foreign_defs(std::vector<HostDef>* out);

// During proxy_on_grpc_*: the message (buffer 5), the metadata (maps 4 and 5), the status.
bool grpc_buffer(Vm& vm, uint32_t type, sy_str_t* out);
bool grpc_pairs(Vm& vm, uint32_t type,
                std::vector<std::pair<std::string_view, std::string_view>>* out);
bool grpc_status(Vm& vm, uint32_t* code, std::string_view* message);
// The stream context CTX_ID is ending: its gRPC calls go with it, reporting nothing more.
void grpc_stream_gone(Vm& vm, uint32_t ctx_id);

// Header pairs serialized as Proxy-Wasm does: count, (key len, value len)*, then each key and
// value followed by a NUL. An empty map may be empty or a single NUL.
bool parse_pairs(std::string_view in, std::vector<std::pair<std::string, std::string>>* out);

// The number of headers of the HTTP call reply being delivered (with :status).
size_t response_header_count(Vm& vm);

// Argument I as an unsigned 32-bit value (pointers, sizes, enums).
inline uint64_t u32(const wasmtime_val_t* a, int i) { return uint32_t(a[i].of.i32); }

}  // namespace sywasm
