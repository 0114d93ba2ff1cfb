// Fuzz target: the ELF reader the loader and sy-module use on module files before dlopen
// (loader/elf.cc, loader/stamp.cc). A module file is untrusted input: any bytes must end in a
// verdict with a message, never a crash or a read outside the file.
#include <string>
#include <string_view>

#include "loader/elf.h"
#include "switchyard/module.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sy::loader;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  elf::File f;
  std::string error;
  if (!f.parse(bytes, "fuzz.so", &error)) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  // Every section parse() accepted lies inside the file.
  for (size_t i = 0; const elf::Section* s = f.at(i); ++i) {
    std::string_view c = f.contents(*s);
    FUZZ_CHECK(c.empty() ||
               (c.data() >= bytes.data() && c.data() + c.size() <= bytes.data() + size));
  }
  Stamp stamp;
  if (!elf::parse_stamp(f, "fuzz.so", &stamp, &error)) FUZZ_CHECK(!error.empty());
  Stamp checked;
  elf::check_module(f, "fuzz.so", &checked);
  elf::check_machine(f, "fuzz.so");
  size_t total = 0;
  // As the loader and sy-module warn about STB_GNU_UNIQUE symbols: listed, then demangled.
  auto names = elf::dynamic_symbols(f, elf::kGnuUniqueBind, 3, &total);
  FUZZ_CHECK(names.size() <= 3 && names.size() <= total);
  for (const auto& n : names) elf::demangle(n);
  elf::dynamic_symbols(f, 1 /* STB_GLOBAL */, 64);
  elf::defines_dynamic(f, SY_MODULE_ENTRY_SYMBOL);
  return 0;
}
