// ModuleState and RunDir: the loader's files in the state directory.
#include "loader/module_state.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/log/log.h"

namespace sy::loader {
namespace {

namespace fs = std::filesystem;

// How many good generations a module keeps copies of: the fallback needs one; a few more
// cover a crash of the fallback itself.
constexpr size_t kGoodKept = 4;

// A module name as one path component: the stamp allows any byte in a name.
std::string safe_component(const std::string& name) {
  std::string out;
  for (char c : name) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
    out.push_back(ok ? c : '_');
  }
  if (out.empty() || out[0] == '.') out.insert(out.begin(), '_');
  return out;
}

bool write_file_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) return false;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace

ModuleState::ModuleState(std::string dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  ::chmod(dir.c_str(), 0700);
  auto canon = fs::weakly_canonical(fs::absolute(dir), ec);
  dir_ = ec ? dir : canon.string();
}

std::string ModuleState::module_dir(const std::string& name) const {
  std::string d = dir_ + "/modules/" + safe_component(name);
  std::error_code ec;
  fs::create_directories(d, ec);
  return d;
}

std::string ModuleState::record_path(const std::string& name, const std::string& sha256) const {
  return module_dir(name) + "/" + sha256 + ".crash";
}

bool ModuleState::crashed(const std::string& name, const std::string& sha256,
                          CrashRecord* out) const {
  std::string path = record_path(name, sha256);
  std::error_code ec;
  if (!fs::exists(path, ec)) return false;
  std::string error;
  if (!read_crash_record(path, out, &error)) {
    SY_WARN("module %s: %s; treating sha256 %s as crashed all the same", name.c_str(),
            error.c_str(), sha256.c_str());
    *out = CrashRecord{};
    out->module = name;
    out->sha256 = sha256;
    out->callback = "(unreadable record)";
    out->path = path;
  }
  return true;
}

std::vector<CrashRecord> ModuleState::crashes(const std::string& name) const {
  std::vector<CrashRecord> out;
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(module_dir(name), ec)) {
    if (f.path().extension() != ".crash") continue;
    CrashRecord r;
    std::string error;
    if (read_crash_record(f.path().string(), &r, &error)) out.push_back(std::move(r));
  }
  // ISO 8601 UTC times sort as text.
  std::sort(out.begin(), out.end(),
            [](const CrashRecord& a, const CrashRecord& b) { return a.time > b.time; });
  return out;
}

std::vector<std::string> ModuleState::good_list(const std::string& name) const {
  std::vector<std::string> shas;
  std::ifstream in(module_dir(name) + "/good");
  std::string line;
  while (std::getline(in, line))
    if (line.size() == 64) shas.push_back(line);
  return shas;
}

void ModuleState::remember_good(const std::string& name, const std::string& sha256,
                                const std::string& copy) const {
  std::string d = module_dir(name);
  std::string kept = d + "/" + sha256 + ".so";
  std::error_code ec;
  if (!fs::exists(kept, ec)) {
    // A hard link when the copy is on the same file system (it is, under the same state
    // directory), else a copy; through a temporary name so a half copy is never kept.
    std::string tmp = kept + ".tmp." + std::to_string(getpid());
    ::unlink(tmp.c_str());
    if (::link(copy.c_str(), tmp.c_str()) != 0) fs::copy_file(copy, tmp, ec);
    if (ec || ::rename(tmp.c_str(), kept.c_str()) != 0) {
      ::unlink(tmp.c_str());
      SY_WARN(
          "module %s: cannot keep a copy of sha256 %s in %s (%s): it cannot stand in for a "
          "crashing generation later",
          name.c_str(), sha256.c_str(), d.c_str(), ec ? ec.message().c_str() : strerror(errno));
      return;
    }
  }
  std::vector<std::string> shas = good_list(name);
  shas.erase(std::remove(shas.begin(), shas.end(), sha256), shas.end());
  shas.insert(shas.begin(), sha256);
  std::vector<std::string> dropped;
  if (shas.size() > kGoodKept) {
    dropped.assign(shas.begin() + kGoodKept, shas.end());
    shas.resize(kGoodKept);
  }
  std::string text;
  for (const auto& s : shas) text += s + "\n";
  if (!write_file_atomically(d + "/good", text))
    SY_WARN("module %s: cannot write %s/good: %s", name.c_str(), d.c_str(), strerror(errno));
  for (const auto& s : dropped) ::unlink((d + "/" + s + ".so").c_str());
}

bool ModuleState::previous_good(const std::string& name, const std::string& skip,
                                std::string* sha256, std::string* path) const {
  std::string d = module_dir(name);
  for (const auto& s : good_list(name)) {
    CrashRecord ignored;
    std::error_code ec;
    if (s == skip || crashed(name, s, &ignored) || !fs::exists(d + "/" + s + ".so", ec)) continue;
    *sha256 = s;
    *path = d + "/" + s + ".so";
    return true;
  }
  return false;
}

RunDir::RunDir(const std::string& state_dir) {
  std::string runs = state_dir + "/run";
  std::error_code ec;
  fs::create_directories(runs, ec);
  for (const auto& f : fs::directory_iterator(runs, ec)) {
    const std::string pid_text = f.path().filename().string();
    char* end = nullptr;
    long pid = std::strtol(pid_text.c_str(), &end, 10);
    if (pid <= 0 || *end != '\0' || pid == long(getpid())) continue;
    if (::kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
    std::error_code ignored;
    fs::remove_all(f.path(), ignored);
  }
  path_ = runs + "/" + std::to_string(getpid());
  fs::create_directories(path_, ec);
}

RunDir::~RunDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace sy::loader
