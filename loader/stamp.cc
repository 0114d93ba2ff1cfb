// The ABI stamp: read from the module's ELF section before dlopen, and the MAJOR.MINOR rule.
#include <algorithm>
#include <cstddef>
#include <cstring>

#include "loader/elf.h"
#include "loader/loader.h"

namespace sy::loader {
namespace elf {
namespace {

std::string fixed_string(std::string_view field) {
  return std::string(field.substr(0, std::min(field.size(), field.find('\0'))));
}

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) out += (c >= 0x20 && c < 0x7f) ? char(c) : '?';
  return out;
}

}  // namespace

bool parse_stamp(const File& file, const std::string& display, Stamp* out, std::string* error) {
  const Section* sec = file.find(SY_STAMP_SECTION);
  if (!sec) {
    *error = display + " has no ABI stamp (no " SY_STAMP_SECTION
                       " section): it was not built as a Switchyard module: add "
                       "SY_MODULE_STAMP(\"name\", \"version\") to one source file and rebuild";
    return false;
  }
  std::string_view raw = file.contents(*sec);
  // Magic, size and version come first in every stamp layout, so a module of another major is
  // still recognised and gets the ABI message rather than a layout complaint.
  constexpr size_t kHead = offsetof(sy_stamp_t, name);
  if (raw.size() < kHead) {
    *error = display + ": the " SY_STAMP_SECTION " section has " + std::to_string(raw.size()) +
             " bytes, expected at least " + std::to_string(kHead) +
             ": rebuild it with SY_MODULE_STAMP from switchyard/module.h";
    return false;
  }
  if (std::memcmp(raw.data(), SY_STAMP_MAGIC, 8) != 0) {
    *error = display + ": the ABI stamp starts with \"" + printable(raw.substr(0, 8)) +
             "\", expected \"" SY_STAMP_MAGIC
             "\": rebuild it with SY_MODULE_STAMP from "
             "switchyard/module.h";
    return false;
  }
  Stamp s;
  std::memcpy(&s.size, raw.data() + offsetof(sy_stamp_t, size), sizeof s.size);
  std::memcpy(&s.abi_major, raw.data() + offsetof(sy_stamp_t, abi_major), sizeof s.abi_major);
  std::memcpy(&s.abi_minor, raw.data() + offsetof(sy_stamp_t, abi_minor), sizeof s.abi_minor);
  if (s.abi_major == SY_ABI_MAJOR) {
    if (raw.size() < sizeof(sy_stamp_t) || s.size < sizeof(sy_stamp_t)) {
      *error = display + ": the ABI stamp has " +
               std::to_string(std::min<uint64_t>(raw.size(), s.size)) + " bytes, expected " +
               std::to_string(sizeof(sy_stamp_t)) + " for ABI " + std::to_string(SY_ABI_MAJOR) +
               ".x: rebuild it with SY_MODULE_STAMP from switchyard/module.h";
      return false;
    }
  }
  // Name and version where this major keeps them; another major's layout may differ, and then
  // they are only informative (the ABI check refuses the module anyway).
  if (raw.size() >= sizeof(sy_stamp_t)) {
    s.name = fixed_string(raw.substr(offsetof(sy_stamp_t, name), sizeof(sy_stamp_t::name)));
    s.version =
        fixed_string(raw.substr(offsetof(sy_stamp_t, version), sizeof(sy_stamp_t::version)));
    if (s.abi_major == SY_ABI_MAJOR && s.name.empty()) {
      *error = display + ": the ABI stamp has an empty module name: give SY_MODULE_STAMP a name";
      return false;
    }
  }
  *out = std::move(s);
  return true;
}

std::string check_module(const File& file, const std::string& display, Stamp* stamp) {
  std::string error;
  if (!parse_stamp(file, display, stamp, &error)) return error;
  if (std::string m = check_abi(display, *stamp); !m.empty()) return m;
  if (std::string m = check_machine(file, display); !m.empty()) return m;
  // Checked here too so a module without an entry never runs its static constructors.
  if (!defines_dynamic(file, SY_MODULE_ENTRY_SYMBOL))
    return "missing entry symbol " SY_MODULE_ENTRY_SYMBOL " in " + display +
           ": declare it with SY_MODULE_ENTRY";
  return "";
}

}  // namespace elf

bool read_stamp(const std::string& path, Stamp* out, std::string* error) {
  std::string bytes;
  if (!elf::read_whole_file(path, &bytes, error)) return false;
  elf::File file;
  if (!file.parse(bytes, path, error)) return false;
  return elf::parse_stamp(file, path, out, error);
}

std::string check_abi(const std::string& path, const Stamp& stamp) {
  const std::string host = std::to_string(SY_ABI_MAJOR) + "." + std::to_string(SY_ABI_MINOR);
  const std::string mod = std::to_string(stamp.abi_major) + "." + std::to_string(stamp.abi_minor);
  if (stamp.abi_major != SY_ABI_MAJOR)
    return path + " was built for ABI " + mod + "; this host provides " + host +
           " (majors must match): rebuild it against the " + std::to_string(SY_ABI_MAJOR) +
           ".x headers";
  if (stamp.abi_minor > SY_ABI_MINOR)
    return path + " needs ABI " + mod + "; this host provides " + host +
           ": rebuild it against the " + host + " headers or upgrade the proxy";
  return "";
}

}  // namespace sy::loader
