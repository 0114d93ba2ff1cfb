// A bounds-checked view of an ELF64 shared object's sections, for reading modules without
// loading them (stamp, dynamic symbols). Internal to loader/ and tools/sy-module.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "loader/loader.h"

namespace sy::loader::elf {

struct Section {
  std::string_view name;
  uint32_t type = 0;
  uint64_t offset = 0, size = 0, entsize = 0;
  uint32_t link = 0;
};

class File {
 public:
  // Checks the ELF header and every section header of BYTES (which must outlive this object).
  // On failure ERROR names DISPLAY (the file as the user gave it), what is wrong, and the fix.
  bool parse(std::string_view bytes, const std::string& display, std::string* error);

  const Section* find(std::string_view name) const;
  const Section* find_type(uint32_t type) const;
  const Section* at(size_t index) const {
    return index < sections_.size() ? &sections_[index] : nullptr;
  }
  // The section's bytes; empty for SHT_NOBITS. parse() checked they lie inside the file.
  std::string_view contents(const Section& s) const;
  uint16_t machine() const { return machine_; }

 private:
  std::string_view bytes_;
  uint16_t machine_ = 0;
  std::vector<Section> sections_;
};

// Reads the whole file; ERROR names the file and the reason.
bool read_whole_file(const std::string& path, std::string* out, std::string* error);

// The stamp in the parsed FILE (see loader.h read_stamp for the messages).
bool parse_stamp(const File& file, const std::string& display, Stamp* out, std::string* error);

// Names of the defined dynamic symbols (.dynsym) with binding BIND, at most MAX of them;
// *TOTAL (if given) receives how many there are.
std::vector<std::string> dynamic_symbols(const File& file, unsigned bind, size_t max,
                                         size_t* total = nullptr);
// NAME demangled when it is a C++ symbol, else NAME.
std::string demangle(const std::string& name);
// True when .dynsym defines NAME.
bool defines_dynamic(const File& file, std::string_view name);

// "" when the module's machine is this host's; else the message naming DISPLAY and the fix.
std::string check_machine(const File& file, const std::string& display);

// Everything that can be checked without running the module: stamp, ABI, machine, entry
// symbol. "" and *STAMP filled when all pass; else the first failure's message.
std::string check_module(const File& file, const std::string& display, Stamp* stamp);

// Lower-case hex sha256 of BYTES.
std::string sha256_hex(std::string_view bytes);

// BIND value glibc gives `static` locals of inline functions and template statics (GCC).
constexpr unsigned kGnuUniqueBind = 10;

}  // namespace sy::loader::elf
