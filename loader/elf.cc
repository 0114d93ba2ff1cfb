// ELF64 header and section table parsing by hand: every offset and size is checked against the
// file size, so a truncated or hostile file yields a message, never a read out of bounds.
#include "loader/elf.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>

namespace sy::loader::elf {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the ELF reader assumes a little-endian host (it reads fields with memcpy)");

// True when [off, off + len) lies inside a file of TOTAL bytes, without overflowing.
bool in_bounds(uint64_t off, uint64_t len, uint64_t total) {
  return off <= total && len <= total - off;
}

template <typename T>
T load(std::string_view bytes, uint64_t off) {
  T v;
  std::memcpy(&v, bytes.data() + off, sizeof v);
  return v;
}

std::string machine_name(uint16_t m) {
  switch (m) {
    case EM_X86_64:
      return "x86-64";
    case EM_AARCH64:
      return "aarch64";
    case EM_386:
      return "i386";
    case EM_ARM:
      return "arm";
    case EM_RISCV:
      return "riscv";
    case EM_PPC64:
      return "ppc64";
    case EM_S390:
      return "s390x";
    default:
      return "machine " + std::to_string(m);
  }
}

uint16_t host_machine() {
#if defined(__x86_64__)
  return EM_X86_64;
#elif defined(__aarch64__)
  return EM_AARCH64;
#elif defined(__riscv)
  return EM_RISCV;
#elif defined(__powerpc64__)
  return EM_PPC64;
#elif defined(__s390x__)
  return EM_S390;
#else
  return EM_NONE;  // unknown: skip the check and let dlopen decide
#endif
}

std::string truncated(const std::string& display, const char* what, uint64_t end, uint64_t size) {
  return display + " is truncated or corrupt: " + what + " end at byte " + std::to_string(end) +
         " but the file has " + std::to_string(size) +
         " bytes: copy the module again or rebuild it";
}

}  // namespace

bool File::parse(std::string_view bytes, const std::string& display, std::string* error) {
  bytes_ = bytes;
  sections_.clear();
  const uint64_t total = bytes.size();
  if (total < EI_NIDENT || std::memcmp(bytes.data(), ELFMAG, SELFMAG) != 0) {
    *error = display + " is not an ELF file (" +
             (total == 0 ? std::string("it is empty") : "it does not start with \\x7fELF") +
             "): give the path of the module's .so";
    return false;
  }
  if (bytes[EI_CLASS] != ELFCLASS64) {
    *error = display + " is a 32-bit ELF file; this host loads 64-bit modules: rebuild it for " +
             machine_name(host_machine());
    return false;
  }
  if (bytes[EI_DATA] != ELFDATA2LSB) {
    *error = display + " is a big-endian ELF file; this host is little-endian: rebuild it for " +
             machine_name(host_machine());
    return false;
  }
  if (total < sizeof(Elf64_Ehdr)) {
    *error = truncated(display, "the ELF header would", sizeof(Elf64_Ehdr), total);
    return false;
  }
  auto eh = load<Elf64_Ehdr>(bytes, 0);
  machine_ = eh.e_machine;
  if (eh.e_type != ET_DYN) {
    *error = display + " is an ELF " +
             (eh.e_type == ET_EXEC  ? std::string("executable")
              : eh.e_type == ET_REL ? std::string("object file (.o)")
                                    : "file of type " + std::to_string(eh.e_type)) +
             ", not a shared object: build the module with add_library(... MODULE) or -shared";
    return false;
  }
  if (eh.e_shoff == 0) {
    *error = display +
             " has no section headers (stripped with sstrip or similar), so it has no "
             "ABI stamp: rebuild it and strip it with plain `strip` at most";
    return false;
  }
  if (eh.e_shentsize != sizeof(Elf64_Shdr)) {
    *error = display + " is corrupt: section header size is " + std::to_string(eh.e_shentsize) +
             ", expected " + std::to_string(sizeof(Elf64_Shdr)) + ": rebuild the module";
    return false;
  }
  if (!in_bounds(eh.e_shoff, sizeof(Elf64_Shdr), total)) {
    *error =
        truncated(display, "the section headers would", eh.e_shoff + sizeof(Elf64_Shdr), total);
    return false;
  }
  // Huge tables keep their real count and string-table index in section 0 (ELF gABI).
  auto sh0 = load<Elf64_Shdr>(bytes, eh.e_shoff);
  uint64_t shnum = eh.e_shnum ? eh.e_shnum : sh0.sh_size;
  uint64_t shstrndx = eh.e_shstrndx == SHN_XINDEX ? sh0.sh_link : eh.e_shstrndx;
  if (shnum > total / sizeof(Elf64_Shdr) ||
      !in_bounds(eh.e_shoff, shnum * sizeof(Elf64_Shdr), total)) {
    *error = truncated(display, "the section headers would",
                       eh.e_shoff + shnum * uint64_t(sizeof(Elf64_Shdr)), total);
    return false;
  }
  if (shstrndx == SHN_UNDEF || shstrndx >= shnum) {
    *error = display + " is corrupt: it has no section name table (index " +
             std::to_string(shstrndx) + " of " + std::to_string(shnum) + "): rebuild the module";
    return false;
  }
  auto strhdr = load<Elf64_Shdr>(bytes, eh.e_shoff + shstrndx * sizeof(Elf64_Shdr));
  if (!in_bounds(strhdr.sh_offset, strhdr.sh_size, total)) {
    *error = truncated(display, "the section name table would", strhdr.sh_offset + strhdr.sh_size,
                       total);
    return false;
  }
  std::string_view names = bytes.substr(strhdr.sh_offset, strhdr.sh_size);
  sections_.reserve(shnum);
  for (uint64_t i = 0; i < shnum; ++i) {
    auto sh = load<Elf64_Shdr>(bytes, eh.e_shoff + i * sizeof(Elf64_Shdr));
    Section s;
    s.type = sh.sh_type;
    s.offset = sh.sh_offset;
    s.size = sh.sh_size;
    s.entsize = sh.sh_entsize;
    s.link = sh.sh_link;
    if (sh.sh_name >= names.size() && i != 0) {
      *error = display + " is corrupt: section " + std::to_string(i) +
               " has a name outside the name table: rebuild the module";
      return false;
    }
    if (sh.sh_name < names.size()) {
      std::string_view rest = names.substr(sh.sh_name);
      size_t nul = rest.find('\0');
      if (nul == std::string_view::npos) {
        *error = display +
                 " is corrupt: the section name table is not NUL-terminated: rebuild "
                 "the module";
        return false;
      }
      s.name = rest.substr(0, nul);
    }
    if (s.type != SHT_NOBITS && s.type != SHT_NULL && !in_bounds(s.offset, s.size, total)) {
      *error = truncated(
          display, ("section " + std::string(s.name.empty() ? "?" : s.name) + " would").c_str(),
          s.offset + s.size, total);
      return false;
    }
    sections_.push_back(s);
  }
  return true;
}

const Section* File::find(std::string_view name) const {
  for (const auto& s : sections_)
    if (s.type != SHT_NULL && s.name == name) return &s;
  return nullptr;
}

const Section* File::find_type(uint32_t type) const {
  for (const auto& s : sections_)
    if (s.type == type) return &s;
  return nullptr;
}

std::string_view File::contents(const Section& s) const {
  if (s.type == SHT_NOBITS || s.type == SHT_NULL) return {};
  return bytes_.substr(s.offset, s.size);
}

bool read_whole_file(const std::string& path, std::string* out, std::string* error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot read " + path + ": " + std::strerror(errno) +
             ": check the path (relative paths are from the proxy's working directory) and its "
             "permissions";
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *error = "cannot read " + path + ": not a regular file: give the path of the module's .so";
    ::close(fd);
    return false;
  }
  out->clear();
  out->reserve(size_t(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = "cannot read " + path + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, size_t(n));
  }
  ::close(fd);
  return true;
}

std::string check_machine(const File& file, const std::string& display) {
  uint16_t host = host_machine();
  if (host == EM_NONE || file.machine() == host) return "";
  return display + " is built for " + machine_name(file.machine()) + "; this host is " +
         machine_name(host) + ": rebuild it for " + machine_name(host);
}

}  // namespace sy::loader::elf
