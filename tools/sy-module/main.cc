// sy-module: inspect and check module files without loading them into this process, and start
// new out-of-tree module projects.
#include <cstdio>
#include <cstring>
#include <string>

#include "config/json_text.h"
#include "loader/elf.h"
#include "loader/loader.h"
#include "tools/sy-module/commands.h"

namespace sy::tool {
namespace {

const char kUsage[] =
    "usage: sy-module inspect FILE         the stamp and filters of FILE, as JSON\n"
    "       sy-module check FILE           exit 0 if this host can load FILE, else 1 and why\n"
    "       sy-module new NAME [--lang c|cpp] [--dir DIR]\n"
    "                                      an out-of-tree module project in DIR (default ./NAME)\n"
    "       sy-module --version\n";

std::string host_abi() { return std::to_string(SY_ABI_MAJOR) + "." + std::to_string(SY_ABI_MINOR); }

// The static facts of a module file, gathered the way the loader gathers them.
struct Facts {
  bool readable = false;  // an ELF shared object we could parse
  bool stamped = false;   // its stamp was read
  loader::Stamp stamp;
  std::string sha256;
  std::string reason;  // "" when compatible
  std::vector<std::string> unique;
  size_t unique_total = 0;
};

Facts gather(const std::string& file) {
  Facts f;
  std::string bytes, error;
  loader::elf::File elf;
  if (!loader::elf::read_whole_file(file, &bytes, &error)) {
    f.reason = error;
    return f;
  }
  f.sha256 = loader::elf::sha256_hex(bytes);
  if (!elf.parse(bytes, file, &error)) {
    f.reason = error;
    return f;
  }
  f.readable = true;
  f.unique = loader::elf::dynamic_symbols(elf, loader::elf::kGnuUniqueBind, 3, &f.unique_total);
  std::string probe;
  f.stamped = loader::elf::parse_stamp(elf, file, &f.stamp, &probe);
  f.reason = loader::elf::check_module(elf, file, &f.stamp);
  return f;
}

std::string unique_warning(const std::string& file, const Facts& f) {
  std::string names;
  for (const auto& n : f.unique) names += (names.empty() ? "" : ", ") + loader::elf::demangle(n);
  if (f.unique_total > f.unique.size())
    names += ", and " + std::to_string(f.unique_total - f.unique.size()) + " more";
  return file + " defines STB_GNU_UNIQUE symbols (" + names +
         "); glibc will keep it mapped after a swap: build with -fno-gnu-unique";
}

std::string json_list(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + json::quoted(v[i]);
  return out + "]";
}

}  // namespace

int inspect(const std::string& file) {
  Facts f = gather(file);
  ChildReport child;
  bool probed = f.reason.empty();
  if (probed) child = probe_in_child(file);
  // The loader would refuse what the child found wrong with the descriptor.
  if (probed && !child.ran && !child.error.empty() && f.reason.empty()) f.reason = child.error;

  std::string out = "{\n";
  out += "  \"file\": " + json::quoted(file) + ",\n";
  out += "  \"sha256\": " + (f.sha256.empty() ? "null" : json::quoted(f.sha256)) + ",\n";
  if (f.stamped) {
    out +=
        "  \"stamp\": {\"name\": " + json::quoted(f.stamp.name) +
        ", \"version\": " + json::quoted(f.stamp.version) + ", \"abi\": " +
        json::quoted(std::to_string(f.stamp.abi_major) + "." + std::to_string(f.stamp.abi_minor)) +
        "},\n";
  } else {
    out += "  \"stamp\": null,\n";
  }
  out += "  \"host_abi\": " + json::quoted(host_abi()) + ",\n";
  out += std::string("  \"compatible\": ") + (f.reason.empty() ? "true" : "false") + ",\n";
  out += "  \"reason\": " + json::quoted(f.reason) + ",\n";
  out += std::string("  \"gnu_unique\": ") + (f.unique_total ? "true" : "false") + ",\n";
  out += "  \"gnu_unique_symbols\": " + json_list(f.unique) + ",\n";
  if (child.ran) {
    out += "  \"filters\": {\"http\": " + json_list(child.http) +
           ", \"network\": " + json_list(child.network) + "},\n";
    out += "  \"filters_from\": \"child process\"\n";
  } else {
    out += "  \"filters\": null,\n";
    out += "  \"filters_from\": " +
           json::quoted(probed ? "child process (failed: " + child.error + ")"
                               : "not run: the module is not compatible with this host") +
           "\n";
  }
  out += "}\n";
  fputs(out.c_str(), stdout);
  return f.readable && f.stamped ? 0 : 1;
}

int check(const std::string& file) {
  Facts f = gather(file);
  // Past the static checks, the entry runs in a child: the loader would also refuse a module
  // whose descriptor is missing or disagrees with its stamp.
  if (f.reason.empty()) {
    ChildReport child = probe_in_child(file);
    if (!child.ran) f.reason = child.error;
  }
  if (!f.reason.empty()) {
    fprintf(stderr, "%s\n", f.reason.c_str());
    return 1;
  }
  if (f.unique_total) fprintf(stderr, "warning: %s\n", unique_warning(file, f).c_str());
  printf("%s: OK (ABI %u.%u on host %s)\n", file.c_str(), f.stamp.abi_major, f.stamp.abi_minor,
         host_abi().c_str());
  return 0;
}

}  // namespace sy::tool

int main(int argc, char** argv) {
  using namespace sy::tool;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    fputs(kUsage, stderr);
    return 2;
  }
  const std::string& cmd = args[0];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "--version") {
    printf("sy-module %s (module ABI %s)\n", SY_VERSION, host_abi().c_str());
    return 0;
  }
  if ((cmd == "inspect" || cmd == "check") && args.size() == 2)
    return cmd == "inspect" ? inspect(args[1]) : check(args[1]);
  if (cmd == "new" && args.size() >= 2) {
    std::string name, lang = "c", dir;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--lang" && i + 1 < args.size()) {
        lang = args[++i];
      } else if (args[i] == "--dir" && i + 1 < args.size()) {
        dir = args[++i];
      } else if (name.empty() && !args[i].starts_with("-")) {
        name = args[i];
      } else {
        fprintf(stderr, "sy-module: unexpected argument '%s'\n%s", args[i].c_str(), kUsage);
        return 2;
      }
    }
    if (lang != "c" && lang != "cpp") {
      fprintf(stderr, "sy-module: --lang is c or cpp, not '%s'\n", lang.c_str());
      return 2;
    }
    if (name.empty()) {
      fputs(kUsage, stderr);
      return 2;
    }
    return new_project(name, lang, dir.empty() ? name : dir);
  }
  fprintf(stderr, "sy-module: unexpected arguments\n%s", kUsage);
  return 2;
}
