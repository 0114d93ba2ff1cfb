// Registry and Generation: load a module as a private, verified copy; publish, retire, unload.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>

#include "config/json_text.h"
#include "core/log/log.h"
#include "loader/abi_sizes.h"
#include "loader/crash_record.h"
#include "loader/elf.h"
#include "loader/loader.h"
#include "loader/module_state.h"
#include "loader/preflight.h"

namespace sy::loader {
namespace {

stats::Counter* counter(const std::string& module, const std::string& name) {
  return filters::module_host_counter(module, name);
}

stats::Gauge* gauge(const std::string& module, const std::string& name) {
  return filters::module_host_gauge(module, name);
}

// Copies whose generation is gone but which are still mapped (glibc refused to unload them).
std::mutex g_stuck_mu;
std::set<std::string> g_stuck;

std::string now_iso8601() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string abi_text(uint16_t major, uint16_t minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

std::string describe(const char* name, const char* version, uint16_t major, uint16_t minor) {
  return std::string("name=") + (name ? name : "(null)") +
         " version=" + (version ? version : "(null)") + " ABI " + abi_text(major, minor);
}

// Writes BYTES to DEST through a temporary file and a rename, so DEST is always a new inode:
// dlopen tells loaded objects apart by inode as well as by name.
bool write_copy(const std::string& dest, std::string_view bytes, std::string* error) {
  static std::atomic<uint64_t> seq{0};
  std::string tmp = dest + ".tmp." + std::to_string(getpid()) + "." + std::to_string(seq++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  bool ok = fd >= 0;
  for (size_t off = 0; ok && off < bytes.size();) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) off += size_t(n);
  }
  int saved = errno;
  if (fd >= 0 && ::close(fd) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (ok && ::rename(tmp.c_str(), dest.c_str()) != 0) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    *error = "cannot write the private copy " + dest + ": " + std::strerror(saved) +
             ": check that the state directory is writable and has space";
  }
  return ok;
}

// Checks a filter list: NULL-terminated, each table at least as large as in ABI 1.0 (a module
// built against any later header has larger ones; the host reads only what each covers), and
// named.
template <typename VT>
std::string check_filters(const VT* const* list, const char* kind, size_t min_size,
                          const std::string& file) {
  for (size_t i = 0; list && list[i]; ++i) {
    if (i >= 1024) return file + ": the " + kind + " filter list has no NULL terminator";
    if (list[i]->size < min_size || list[i]->size > kMaxTableSize)
      return file + ": " + kind + " filter #" + std::to_string(i) + " has size " +
             std::to_string(list[i]->size) + ", expected at least " + std::to_string(min_size) +
             " (ABI " + abi_text(SY_ABI_MAJOR, 0) + "): set .size = sizeof(sy_" + kind +
             "_filter_t)";
    if (!list[i]->name || !*list[i]->name)
      return file + ": " + kind + " filter #" + std::to_string(i) +
             " has no name: set .name (it is what `filter:` selects in the config)";
  }
  return "";
}

template <typename VT>
const VT* pick(const VT* const* list, std::string_view name) {
  for (size_t i = 0; list && list[i]; ++i)
    if (name.empty() || name == list[i]->name) return list[i];
  return nullptr;
}

}  // namespace

// ---- free functions ---------------------------------------------------------------------

std::string check_descriptor(const std::string& file, const Stamp& stamp,
                             const sy_module_descriptor_t* d) {
  if (!d)
    return "the entry function of " + file +
           " returned no descriptor (NULL): the module refused to load; its log lines may say why";
  if (d->size < kDescriptorSize_1_0 || d->size > kMaxTableSize)
    return "the descriptor of " + file + " has size " + std::to_string(d->size) +
           ", expected at least " + std::to_string(kDescriptorSize_1_0) + " (ABI " +
           abi_text(SY_ABI_MAJOR, 0) +
           "): return a filled sy_module_descriptor_t with .size = sizeof(sy_module_descriptor_t)";
  if (d->abi_major != stamp.abi_major || d->abi_minor != stamp.abi_minor || !d->name ||
      !d->version || stamp.name != d->name || stamp.version != d->version)
    return "stamp and descriptor disagree in " + file + ": stamp says " +
           describe(stamp.name.c_str(), stamp.version.c_str(), stamp.abi_major, stamp.abi_minor) +
           ", descriptor says " + describe(d->name, d->version, d->abi_major, d->abi_minor) +
           ": give SY_MODULE_STAMP and the descriptor the same name and version, and set the "
           "descriptor's ABI from SY_ABI_MAJOR / SY_ABI_MINOR";
  if (std::string m = check_filters(d->http_filters, "http", kHttpFilterSize_1_0, file); !m.empty())
    return m;
  return check_filters(d->network_filters, "network", kNetworkFilterSize_1_0, file);
}

std::string find_on_path(const std::vector<std::string>& module_path, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos) return "";
  for (const auto& dir : module_path) {
    std::string p = (dir.empty() ? std::string(".") : dir) + "/libsy_" + name + ".so";
    struct stat st;
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return p;
  }
  return "";
}

bool is_mapped(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  const std::string deleted = path + " (deleted)";
  std::string line;
  while (std::getline(maps, line)) {
    // "start-end perms offset dev inode   path": the path begins at the first '/' after the
    // five fixed fields (paths of mapped files are absolute).
    size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string_view p = std::string_view(line).substr(slash);
    if (p == path || p == deleted) return true;
  }
  return false;
}

// ---- Generation -------------------------------------------------------------------------

Generation::~Generation() {
  filters::forget_generation(&scope_);
  if (loaded_ && desc_->on_unload) {
    filters::ModuleCallMark mark(scope_.identity, "on_unload");
    desc_->on_unload(module_data_);
  }
  if (dl_) dlclose(dl_);
  if (!copy_path_.empty()) ::unlink(copy_path_.c_str());
  if (dl_ && is_mapped(copy_path_)) {
    SY_WARN("module %s generation %llu: %s is still mapped after dlclose: %s", name().c_str(),
            (unsigned long long)number(), copy_path_.c_str(),
            gnu_unique_ ? "it defines STB_GNU_UNIQUE symbols, which glibc never unloads: build it "
                          "with -fno-gnu-unique"
                        : "something keeps it loaded (a thread it started, a thread_local with a "
                          "destructor, or a dlopen of its own)");
    counter(name(), "unload_failures")->inc();
    std::lock_guard<std::mutex> lock(g_stuck_mu);
    g_stuck.insert(copy_path_);
  }
}

// The module's table copied into one of today's size: the slots beyond the module's own size
// (added by minors after the one it was built for) stay NULL, so the host may test any slot
// for NULL without reading past the module's table. SIZE is what the copy covers.
template <typename T>
std::unique_ptr<T> covered_copy(const T* table) {
  auto copy = std::make_unique<T>();  // value-initialised: every slot NULL
  size_t n = std::min<size_t>(table->size, sizeof(T));
  std::memcpy(static_cast<void*>(copy.get()), table, n);
  copy->size = uint32_t(n);
  return copy;
}

template <typename T>
const T* const* covered_list(const T* const* list, std::vector<std::unique_ptr<T>>* tables,
                             std::vector<const T*>* pointers) {
  if (!list) return nullptr;
  for (size_t i = 0; list[i]; ++i) {
    tables->push_back(covered_copy(list[i]));
    pointers->push_back(tables->back().get());
  }
  pointers->push_back(nullptr);
  return pointers->data();
}

void Generation::adopt(const sy_module_descriptor_t* d) {
  desc_copy_ = *covered_copy(d);
  desc_copy_.http_filters = covered_list(d->http_filters, &http_tables_, &http_list_);
  desc_copy_.network_filters = covered_list(d->network_filters, &network_tables_, &network_list_);
  desc_ = &desc_copy_;
}

const sy_http_filter_t* Generation::http_filter(std::string_view name) const {
  return desc_ ? pick(desc_->http_filters, name) : nullptr;
}

const sy_network_filter_t* Generation::network_filter(std::string_view name) const {
  return desc_ ? pick(desc_->network_filters, name) : nullptr;
}

// ---- Registry ---------------------------------------------------------------------------

Registry::Registry(const sy_host_t* host, std::string state_dir) : host_(host) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  ::chmod(state_dir.c_str(), 0700);
  // /proc/self/maps shows canonical absolute paths; the copies must be named the same way.
  auto canon = std::filesystem::weakly_canonical(std::filesystem::absolute(state_dir), ec);
  state_dir_ = ec ? state_dir : canon.string();
}

Registry::~Registry() = default;

std::string Registry::copy_path_for(const std::string& sha, const std::string& path,
                                    uint64_t n) const {
  std::string base = state_dir_ + "/" + sha + "-" + std::filesystem::path(path).filename().string();
  // Same content already loaded as another generation: dlopen would hand back that mapping,
  // and the two generations would share their static state.
  if (!is_mapped(base)) return base;
  for (;; ++n) {
    std::string p = base + "-g" + std::to_string(n);
    if (!is_mapped(p)) return p;
  }
}

std::shared_ptr<Generation> Registry::load(const ModuleSpec& spec, std::string* error) {
  Entry& e = entries_[spec.name];
  if (e.spec.name.empty()) e.spec = spec;
  const std::string& file = spec.path;
  auto fail = [&](std::string msg) -> std::shared_ptr<Generation> {
    counter(spec.name, "load_failures")->inc();
    SY_DEBUG("module %s: load failed: %s", spec.name.c_str(), msg.c_str());
    *error = std::move(msg);
    return nullptr;
  };

  // Everything is checked on the bytes that will be loaded, read once: replacing the file
  // meanwhile cannot slip unverified code in.
  std::string bytes;
  elf::File elf;
  Stamp stamp;
  if (!elf::read_whole_file(file, &bytes, error) || !elf.parse(bytes, file, error))
    return fail(*error);
  if (std::string m = elf::check_module(elf, file, &stamp); !m.empty()) return fail(m);
  if (stamp.name != spec.name)
    return fail(file + " is module '" + stamp.name + "' (its stamp says so), but the config " +
                "loads it as '" + spec.name + "': name it '" + stamp.name +
                "' in the config, or point the path at libsy_" + spec.name + ".so");
  std::string sha = elf::sha256_hex(bytes);
  if (!spec.sha256.empty() && lower(spec.sha256) != sha)
    return fail("sha256 mismatch for " + file + ": found " + sha + ", expected " +
                lower(spec.sha256) + " (the pin in the config): deploy the file the pin names, " +
                "or update the pin to " + sha + " if this file is the one you mean");
  if (CrashRecord crash; state_ && state_->crashed(spec.name, sha, &crash)) {
    bytes.clear();
    return load_instead_of_crashed(spec, sha, crash, error);
  }

  // Owned plainly until it has loaded: a failed load is torn down here and now, on the main
  // thread; only a live generation needs its teardown deferred to the main loop.
  std::unique_ptr<Generation> gen(new Generation());
  gen->spec_ = spec;
  gen->scope_.name = spec.name;
  gen->scope_.config_json = spec.config_json;
  gen->scope_.generation = e.next_generation;
  gen->scope_.identity =
      filters::make_module_identity(spec.name.c_str(), sha.c_str(), e.next_generation,
                                    state_ ? state_->record_path(spec.name, sha).c_str() : "");
  gen->scope_.callback_exceptions = counter(spec.name, "callback_exceptions");
  gen->scope_.posts_dropped = counter(spec.name, "posts_dropped");
  gen->source_path_ = file;
  gen->sha256_ = sha;
  gen->stamp_ = stamp;
  size_t unique_total = 0;
  auto unique = elf::dynamic_symbols(elf, elf::kGnuUniqueBind, 3, &unique_total);
  gen->gnu_unique_ = unique_total > 0;
  if (gen->gnu_unique_) {
    std::string names;
    for (const auto& n : unique) names += (names.empty() ? "" : ", ") + elf::demangle(n);
    if (unique_total > unique.size())
      names += ", and " + std::to_string(unique_total - unique.size()) + " more";
    SY_WARN(
        "%s defines STB_GNU_UNIQUE symbols (%s); glibc will keep it mapped after a swap: "
        "build with -fno-gnu-unique",
        file.c_str(), names.c_str());
  }

  std::string copy = copy_path_for(sha, file, gen->number());
  if (!write_copy(copy, bytes, error)) return fail(*error);
  gen->copy_path_ = copy;
  bytes.clear();
  bytes.shrink_to_fit();

  // A module that crashes or hangs in its constructors, entry or on_load would take the proxy
  // down with it: try those first in a child process, on the very copy about to be loaded.
  if (preflight_) {
    auto started = std::chrono::steady_clock::now();
    PreflightReport report = preflight_in_child(copy, file, stamp, 5000, spec.config_json);
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - started)
                  .count();
    SY_DEBUG("module %s: preflight of %s took %lld us", spec.name.c_str(), file.c_str(),
             (long long)us);
    if (!report.ran) return fail(report.error);
  }

  dlerror();
  gen->dl_ = dlopen(copy.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!gen->dl_) {
    const char* why = dlerror();
    std::string msg = "cannot load " + file + " (private copy " + copy +
                      "): " + (why ? why : "dlopen failed") +
                      ": check that the libraries it needs are installed (ldd " + file + ")";
    if (why && std::strstr(why, "failed to map segment"))
      msg += "; the state directory may be on a noexec mount";
    return fail(msg);
  }
  auto entry = reinterpret_cast<sy_module_entry_fn>(dlsym(gen->dl_, SY_MODULE_ENTRY_SYMBOL));
  if (!entry)
    return fail("missing entry symbol " SY_MODULE_ENTRY_SYMBOL " in " + file +
                ": declare it with SY_MODULE_ENTRY");
  const sy_module_descriptor_t* d;
  {
    filters::ModuleCallMark mark(gen->scope_.identity, "entry function");
    d = entry(host_, gen->scope_.handle());
  }
  if (std::string m = check_descriptor(file, stamp, d); !m.empty()) return fail(m);
  gen->adopt(d);

  if (d->on_load) {
    sy_error_t err{};
    bool ok;
    {
      filters::ModuleCallMark mark(gen->scope_.identity, "on_load");
      ok = d->on_load(gen->scope_.handle(), &gen->module_data_, &err);
    }
    if (!ok) return fail(on_load_refusal(spec.name, file, err));
  }
  gen->loaded_ = true;

  // Hand-over happens before publish, so the new generation starts with the old one's state.
  if (auto old = e.current; old && old->desc_->on_handover_export && d->on_handover_import) {
    std::string copy_of_blob;
    {
      filters::ModuleCallMark mark(old->scope_.identity, "on_handover_export");
      sy_str_t blob = old->desc_->on_handover_export(old->module_data_);
      if (blob.ptr) copy_of_blob.assign(blob.ptr, blob.len);
    }
    filters::ModuleCallMark mark(gen->scope_.identity, "on_handover_import");
    d->on_handover_import(gen->module_data_, {copy_of_blob.data(), copy_of_blob.size()});
  }

  gen->loaded_at_ = now_iso8601();
  e.next_generation = gen->number() + 1;
  counter(spec.name, "loads")->inc();
  SY_INFO("module %s: loaded generation %llu from %s (sha256 %s, ABI %s, version %s)",
          spec.name.c_str(), (unsigned long long)gen->number(), file.c_str(), sha.c_str(),
          abi_text(stamp.abi_major, stamp.abi_minor).c_str(), stamp.version.c_str());
  // Queues the module registers with a worker's own handle tell it through its descriptor
  // (since ABI 1.2), while this generation is loaded.
  gen->scope_.on_queue_ready = gen->desc_->on_queue_ready;
  gen->scope_.module_data = gen->module_data_;
  auto shared = filters::make_main_thread_shared(gen.release());
  filters::publish_generation(&shared->scope_, shared);
  return shared;
}

std::shared_ptr<Generation> Registry::load_instead_of_crashed(const ModuleSpec& spec,
                                                              const std::string& sha,
                                                              const CrashRecord& crash,
                                                              std::string* error) {
  auto fail = [&](std::string msg) -> std::shared_ptr<Generation> {
    counter(spec.name, "load_failures")->inc();
    *error = std::move(msg);
    return nullptr;
  };
  std::string what = "module '" + spec.name + "': " + spec.path + " (sha256 " + sha +
                     ") crashed the proxy before: generation " + std::to_string(crash.generation) +
                     " died of signal " + std::to_string(crash.signal) + " (" +
                     (crash.signal_name.empty() ? "?" : crash.signal_name) + ") in its " +
                     crash.callback + " callback" +
                     (crash.time.empty() ? "" : " at " + crash.time) +
                     (crash.pid ? " (pid " + std::to_string(crash.pid) + ")" : "");
  std::string clear = "to load this file again, delete its crash record " + crash.path +
                      "; a file with another sha256 loads normally";
  if (on_crash_ == config::OnModuleCrash::kRefuse)
    return fail(what + "; on_module_crash is refuse, so it is not loaded again: " + clear);
  if (!spec.sha256.empty())
    return fail(what +
                "; the config pins this sha256, so no other generation may stand in for "
                "it: " +
                clear + ", or pin another file");
  std::string prev_sha, prev_path;
  if (!state_->previous_good(spec.name, sha, &prev_sha, &prev_path))
    return fail(what + "; on_module_crash is previous, but no earlier good generation of '" +
                spec.name + "' is kept in " + state_->dir() +
                " to load instead: deploy a fixed file, or " + clear);
  SY_ERROR(
      "%s; on_module_crash is previous: SKIPPING it and loading the previous good "
      "generation (sha256 %s, kept at %s) in its place; %s",
      what.c_str(), prev_sha.c_str(), prev_path.c_str(), clear.c_str());
  ModuleSpec stand_in = spec;
  stand_in.path = prev_path;
  stand_in.sha256 = prev_sha;  // the kept copy must still be what it was
  auto gen = load(stand_in, error);
  if (!gen) {
    *error =
        what + "; the previous good generation (" + prev_path + ") did not load either: " + *error;
    return nullptr;
  }
  // The generation answers for the path the config names: a reload of the same config keeps
  // it instead of trying the crashed file again.
  gen->spec_ = spec;
  gen->stands_in_for_ = sha;
  return gen;
}

void Registry::retire(Entry& e, std::shared_ptr<Generation> gen) {
  e.retired.push_back(gen);
  e.retired_info.emplace_back(gen->number(), gen->sha256());
  // Unloaded ones are kept only as a short history for /modules.
  size_t gone = 0;
  for (size_t i = e.retired.size(); i-- > 0;) {
    if (!e.retired[i].expired() || ++gone <= 8) continue;
    e.retired.erase(e.retired.begin() + long(i));
    e.retired_info.erase(e.retired_info.begin() + long(i));
  }
}

void Registry::publish(std::shared_ptr<Generation> gen) {
  Entry& e = entries_[gen->name()];
  if (e.current == gen) return;
  bool swapped = e.current != nullptr;
  if (gen == e.previous) {
    std::swap(e.current, e.previous);  // rollback: the one we left becomes the previous
  } else {
    if (e.previous) retire(e, std::move(e.previous));
    e.previous = std::move(e.current);
    e.current = std::move(gen);
  }
  e.spec = e.current->spec_;
  if (swapped) counter(e.spec.name, "swaps")->inc();
  // It serves now: the generation a later crash of another one falls back to.
  if (state_) state_->remember_good(e.spec.name, e.current->sha256(), e.current->copy_path());
  gauge(e.spec.name, "generation")->set(int64_t(e.current->number()));
  SY_INFO("module %s: generation %llu is current", e.spec.name.c_str(),
          (unsigned long long)e.current->number());
  update_gauges();
}

std::shared_ptr<Generation> Registry::current(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second.current;
}

std::shared_ptr<Generation> Registry::previous(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second.previous;
}

const ModuleSpec* Registry::spec(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second.spec;
}

void Registry::set_last_error(const std::string& name, const std::string& error) {
  Entry& e = entries_[name];
  if (e.spec.name.empty()) e.spec.name = name;
  e.last_error = error;
}

namespace {
int64_t streams_of(const std::shared_ptr<Generation>& g) { return g ? g->streams_active() : 0; }
}  // namespace

void Registry::update_gauges() const {
  for (const auto& [name, e] : entries_) {
    int64_t n = streams_of(e.current) + streams_of(e.previous);
    for (const auto& w : e.retired) n += streams_of(w.lock());
    gauge(name, "streams_active")->set(n);
  }
}

std::string Registry::list_json() const {
  update_gauges();
  std::string out = "[";
  for (const auto& [name, e] : entries_) {
    const auto& g = e.current;
    if (out.size() > 1) out += ",";
    out += "{\"name\":" + json::quoted(name);
    out += ",\"path\":" + json::quoted(g ? g->source_path() : e.spec.path);
    out += ",\"sha256\":" + json::quoted(g ? g->sha256() : "");
    out += ",\"module_version\":" + json::quoted(g ? g->stamp().version : "");
    out +=
        ",\"abi\":" + json::quoted(g ? abi_text(g->stamp().abi_major, g->stamp().abi_minor) : "");
    out += ",\"generation\":" + std::to_string(g ? g->number() : 0);
    out += ",\"loaded_at\":" + json::quoted(g ? g->loaded_at() : "");
    out += ",\"streams_active\":" + std::to_string(streams_of(g));
    out += ",\"copy_path\":" + json::quoted(g ? g->copy_path() : "");
    out += std::string(",\"gnu_unique\":") + (g && g->gnu_unique_ ? "true" : "false");
    out += ",\"last_error\":" + json::quoted(e.last_error);
    out += ",\"previous\":[";
    bool first = true;
    auto item = [&](uint64_t number, const std::string& sha, const std::shared_ptr<Generation>& p) {
      out += first ? "" : ",";
      first = false;
      out += "{\"generation\":" + std::to_string(number) + ",\"sha256\":" + json::quoted(sha) +
             ",\"streams_active\":" + std::to_string(streams_of(p)) +
             ",\"loaded\":" + (p ? "true" : "false") + "}";
    };
    if (e.previous) item(e.previous->number(), e.previous->sha256(), e.previous);
    for (size_t i = e.retired.size(); i-- > 0;)
      item(e.retired_info[i].first, e.retired_info[i].second, e.retired[i].lock());
    out += "]";
    out += ",\"stands_in_for\":" + json::quoted(g ? g->stands_in_for() : "");
    out += ",\"crashes\":[";
    if (state_) {
      bool first_crash = true;
      for (const auto& r : state_->crashes(name)) {
        out += first_crash ? "" : ",";
        first_crash = false;
        out += crash_record_json(r);
      }
    }
    out += "]}";
  }
  return out + "]";
}

std::vector<std::string> Registry::retired_still_loaded() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : entries_)
    for (const auto& w : e.retired)
      if (auto g = w.lock()) out.push_back(g->copy_path());
  std::lock_guard<std::mutex> lock(g_stuck_mu);
  for (auto it = g_stuck.begin(); it != g_stuck.end();) {
    if (is_mapped(*it)) {
      out.push_back(*it);
      ++it;
    } else {
      it = g_stuck.erase(it);
    }
  }
  return out;
}

}  // namespace sy::loader
