// Reads the type, import, function and export sections of a .wasm (signatures.h). Only what is
// needed to know each boundary function's value types; everything else is skipped by size.
#include "signatures.h"

#include <cstdint>
#include <vector>

namespace sywasm {
namespace {

struct Reader {
  std::string_view b;
  size_t at = 0;
  bool bad = false;

  bool more() const { return !bad && at < b.size(); }
  uint8_t byte() {
    if (at >= b.size()) {
      bad = true;
      return 0;
    }
    return uint8_t(b[at++]);
  }
  // Unsigned LEB128, up to 64 bits; also reads the s33 of a heap type (its value is not needed).
  uint64_t leb() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t c = byte();
      if (bad) return 0;
      v |= uint64_t(c & 0x7f) << shift;
      if (!(c & 0x80)) return v;
    }
    bad = true;
    return 0;
  }
  std::string_view name() {
    uint64_t n = leb();
    if (bad || n > b.size() - at) {
      bad = true;
      return {};
    }
    std::string_view s = b.substr(at, n);
    at += n;
    return s;
  }
  // A value type; true for the four numeric ones. Reference types with a heap type (0x63,
  // 0x64) carry one more LEB.
  bool valtype() {
    uint8_t t = byte();
    if (t == 0x63 || t == 0x64) leb();
    return t == 0x7f || t == 0x7e || t == 0x7d || t == 0x7c;
  }
  void limits() {
    uint8_t flags = byte();
    leb();
    if (flags & 0x01) leb();
    if (flags & 0x08) leb();  // custom page size
  }
};

struct Fn {
  std::string module, name;  // import module and name, or the export's name
  uint64_t type = 0;
};

}  // namespace

bool check_boundary_signatures(std::string_view wasm, std::string* err) {
  Reader r{wasm};
  if (wasm.size() < 8 || wasm.substr(0, 4) != std::string_view("\0asm", 4)) {
    *err = "wasm: not a WebAssembly binary module";
    return false;
  }
  r.at = 8;
  std::vector<bool> plain;  // by type index: a function type of numeric types only
  std::vector<Fn> imported;
  std::vector<uint64_t> defined;                           // type index of each defined function
  std::vector<std::pair<std::string, uint64_t>> exported;  // name, function index
  while (r.more()) {
    uint8_t id = r.byte();
    uint64_t size = r.leb();
    if (r.bad || size > wasm.size() - r.at) break;
    Reader s{wasm.substr(r.at, size)};
    r.at += size;
    if (id == 1) {
      for (uint64_t n = s.leb(); n > 0 && !s.bad; --n) {
        if (s.byte() != 0x60) {
          // A GC-era form (rec group, sub type, struct, array): its length and the type
          // indices after it are not read here; those types count as not plain.
          break;
        }
        bool ok = true;
        for (int vec = 0; vec < 2; ++vec)
          for (uint64_t k = s.leb(); k > 0 && !s.bad; --k) ok = s.valtype() && ok;
        plain.push_back(ok && !s.bad);
      }
    } else if (id == 2) {
      for (uint64_t n = s.leb(); n > 0 && !s.bad; --n) {
        Fn f{std::string(s.name()), std::string(s.name())};
        switch (s.byte()) {
          case 0x00:  // function
            f.type = s.leb();
            imported.push_back(std::move(f));
            break;
          case 0x01:  // table: reference type, limits
            s.valtype();
            s.limits();
            break;
          case 0x02:  // memory
            s.limits();
            break;
          case 0x03:  // global: value type, mutability
            s.valtype();
            s.byte();
            break;
          case 0x04:  // tag: attribute, type index
            s.byte();
            s.leb();
            break;
          default:
            s.bad = true;
        }
      }
      if (s.bad) {
        *err = "wasm: the module's import section uses an encoding this host does not read";
        return false;
      }
    } else if (id == 3) {
      for (uint64_t n = s.leb(); n > 0 && !s.bad; --n) defined.push_back(s.leb());
    } else if (id == 7) {
      for (uint64_t n = s.leb(); n > 0 && !s.bad; --n) {
        std::string name(s.name());
        uint8_t kind = s.byte();
        uint64_t index = s.leb();
        if (kind == 0x00) exported.emplace_back(std::move(name), index);
      }
    }
    if (s.bad) {
      *err =
          "wasm: a section of the module could not be read (section id " + std::to_string(id) + ")";
      return false;
    }
  }
  auto is_plain = [&](uint64_t type) { return type < plain.size() && plain[type]; };
  const char* why =
      " uses a value type this host cannot pass (only i32, i64, f32 and f64: no v128 or "
      "reference types at the module's boundary)";
  for (const Fn& f : imported) {
    if (!is_plain(f.type)) {
      *err = "wasm: the imported function " + f.module + "." + f.name + why;
      return false;
    }
  }
  for (const auto& [name, index] : exported) {
    uint64_t type = 0;
    if (index < imported.size())
      type = imported[index].type;
    else if (index - imported.size() < defined.size())
      type = defined[index - imported.size()];
    else
      continue;  // Wasmtime validated the module: an out-of-range index cannot be here
    if (!is_plain(type)) {
      *err = "wasm: the exported function " + name + why;
      return false;
    }
  }
  return true;
}

}  // namespace sywasm
