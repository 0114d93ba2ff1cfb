// Dynamic symbol scan: STB_GNU_UNIQUE symbols (which make glibc refuse to unload a module) and
// the entry symbol, both found without loading the file.
#include <cxxabi.h>
#include <elf.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "loader/elf.h"
#include "loader/loader.h"

namespace sy::loader {
namespace elf {
namespace {

// Calls FN(name, sym) for each symbol of .dynsym whose name lies inside its string table.
template <typename Fn>
void for_each_dynamic(const File& file, Fn fn) {
  const Section* sym = file.find_type(SHT_DYNSYM);
  if (!sym || sym->entsize != sizeof(Elf64_Sym)) return;
  const Section* str = file.at(sym->link);
  if (!str || str->type != SHT_STRTAB) return;
  std::string_view syms = file.contents(*sym), strs = file.contents(*str);
  for (size_t off = 0; off + sizeof(Elf64_Sym) <= syms.size(); off += sizeof(Elf64_Sym)) {
    Elf64_Sym s;
    std::memcpy(&s, syms.data() + off, sizeof s);
    if (s.st_name == 0 || s.st_name >= strs.size()) continue;
    std::string_view rest = strs.substr(s.st_name);
    size_t nul = rest.find('\0');
    if (nul == std::string_view::npos) continue;
    if (!fn(rest.substr(0, nul), s)) return;
  }
}

}  // namespace

std::vector<std::string> dynamic_symbols(const File& file, unsigned bind, size_t max,
                                         size_t* total) {
  std::vector<std::string> out;
  size_t n = 0;
  for_each_dynamic(file, [&](std::string_view name, const Elf64_Sym& s) {
    if (ELF64_ST_BIND(s.st_info) != bind || s.st_shndx == SHN_UNDEF) return true;
    if (out.size() < max) out.emplace_back(name);
    ++n;
    return true;
  });
  if (total) *total = n;
  return out;
}

std::string demangle(const std::string& name) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> out(
      abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status), &std::free);
  return status == 0 && out ? std::string(out.get()) : name;
}

bool defines_dynamic(const File& file, std::string_view name) {
  bool found = false;
  for_each_dynamic(file, [&](std::string_view n, const Elf64_Sym& s) {
    found = n == name && s.st_shndx != SHN_UNDEF;
    return !found;
  });
  return found;
}

}  // namespace elf

bool has_gnu_unique(const std::string& path) {
  std::string bytes, error;
  elf::File file;
  if (!elf::read_whole_file(path, &bytes, &error) || !file.parse(bytes, path, &error)) return false;
  size_t total = 0;
  elf::dynamic_symbols(file, elf::kGnuUniqueBind, 0, &total);
  return total > 0;
}

}  // namespace sy::loader
