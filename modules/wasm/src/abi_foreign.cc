// proxy_call_foreign_function: the foreign functions of Envoy's Wasm host that mean something
// here (source/extensions/common/wasm/foreign.cc): "compress" and "uncompress", zlib's format
// with its default level. Envoy's others need what this host does not have (a CEL evaluator,
// Envoy's filter-state protobufs, its key formats for signatures); those names, like any other,
// answer NOT_FOUND.
#include <zlib.h>

#include <string>

#include "hostcall.h"

namespace sywasm {
namespace {

// An uncompressed result larger than this is refused: a few KiB of input must not make the
// host allocate without bound (a "zip bomb"), whatever the VM's own memory limit is.
constexpr size_t kMaxUncompressed = 64u << 20;

int64_t compress_bytes(std::string_view in, std::string* out) {
  uLongf len = compressBound(uLong(in.size()));
  out->resize(len);
  if (compress(reinterpret_cast<Bytef*>(out->data()), &len,
               reinterpret_cast<const Bytef*>(in.data()), uLong(in.size())) != Z_OK)
    return kSerializationFailure;
  out->resize(len);
  return kOk;
}

int64_t uncompress_bytes(std::string_view in, std::string* out) {
  // Grows the output until it fits (Z_BUF_ERROR means too small), up to the limit.
  for (size_t cap = in.size() * 2 + 64;; cap *= 2) {
    if (cap > kMaxUncompressed) cap = kMaxUncompressed;
    out->resize(cap);
    uLongf len = uLongf(cap);
    int rc = uncompress(reinterpret_cast<Bytef*>(out->data()), &len,
                        reinterpret_cast<const Bytef*>(in.data()), uLong(in.size()));
    if (rc == Z_OK) {
      out->resize(len);
      return kOk;
    }
    if (rc != Z_BUF_ERROR || cap == kMaxUncompressed) return kSerializationFailure;
  }
}

int64_t h_foreign_function(Vm& vm, const wasmtime_val_t* a) {
  std::string_view name, args;
  if (!vm.read(u32(a, 0), u32(a, 1), &name) || !vm.read(u32(a, 2), u32(a, 3), &args))
    return kInvalidMemoryAccess;
  std::string in(args), out;  // copied: the module's allocation in give() may move its memory
  int64_t rc;
  if (name == "compress")
    rc = compress_bytes(in, &out);
  else if (name == "uncompress")
    rc = uncompress_bytes(in, &out);
  else
    return kNotFound;
  if (rc != kOk) return rc;
  return vm.give(out, u32(a, 4), u32(a, 5)) ? kOk : kInvalidMemoryAccess;
}

}  // namespace

void add_foreign_defs(std::vector<HostDef>* out) {
  out->push_back({"env", "proxy_call_foreign_function", "iiiiii", "i", h_foreign_function});
}

}  // namespace sywasm
