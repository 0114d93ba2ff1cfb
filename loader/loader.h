// Finds, verifies, loads, versions and hot-swaps modules; unloads a generation after its last
// reference goes. Depends on abi/ and core/filter_chain/factory.h (ModuleScope) only.
#pragma once

#include <switchyard/module.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/filter_chain/factory.h"

namespace sy::loader {

class ModuleState;
struct CrashRecord;

// What a module's stamp says, read from its file without loading it.
struct Stamp {
  uint32_t size = 0;
  uint16_t abi_major = 0, abi_minor = 0;
  std::string name, version;
};

// Reads the stamp. On failure returns false and ERROR names the file, what was found and the fix
// (not an ELF file, truncated, no stamp section, bad magic).
bool read_stamp(const std::string& path, Stamp* out, std::string* error);
// "" when a host of this ABI can load a module with STAMP; else the message: file, found,
// expected, fix ("hello.so needs ABI 1.4; this host provides 1.2: rebuild it against the 1.2
// headers or upgrade the proxy").
std::string check_abi(const std::string& path, const Stamp& stamp);
// Lower-case hex sha256 of the file; "" and ERROR on failure.
std::string sha256_file(const std::string& path, std::string* error);
// True when the file defines STB_GNU_UNIQUE symbols: glibc will then never unload it.
bool has_gnu_unique(const std::string& path);
// libsy_NAME.so on MODULE_PATH (first hit), or "".
std::string find_on_path(const std::vector<std::string>& module_path, const std::string& name);
// True while PATH (or its deleted remains) is mapped into this process (/proc/self/maps).
bool is_mapped(const std::string& path);
// "" when descriptor D (returned by the entry of the module at PATH) is well formed and agrees
// with STAMP; else the message (file, found, expected, fix). Used by the loader and sy-module.
std::string check_descriptor(const std::string& path, const Stamp& stamp,
                             const sy_module_descriptor_t* d);

struct ModuleSpec {
  std::string name;
  std::string path;
  std::string sha256;  // optional pin
  bool watch = false;
  std::string config_json = "{}";  // the module's `config:` (host module_config)
};

// One loaded copy of a module. Created by Registry::load; freed (on_unload, dlclose, private copy
// removed, unmapping verified) on the main thread when the last shared_ptr goes.
class Generation {
 public:
  ~Generation();
  const std::string& name() const { return scope_.name; }
  uint64_t number() const { return scope_.generation; }
  const std::string& source_path() const { return source_path_; }
  // The path the config (or a swap) asked for. It differs from source_path() only when the
  // file there had crashed and this generation, a previous good one, stands in for it.
  const std::string& requested_path() const { return spec_.path; }
  const std::string& config_json() const { return spec_.config_json; }
  // The sha256 of the crashed file this generation stands in for, or "".
  const std::string& stands_in_for() const { return stands_in_for_; }
  const std::string& copy_path() const { return copy_path_; }
  const std::string& sha256() const { return sha256_; }
  const Stamp& stamp() const { return stamp_; }
  const std::string& loaded_at() const { return loaded_at_; }
  // The descriptor and its filter tables as copies at today's sizes: slots later than the
  // module's ABI are NULL (see abi_sizes.h). Valid while the generation lives.
  const sy_module_descriptor_t* descriptor() const { return desc_; }
  void* module_data() const { return module_data_; }
  filters::ModuleScope* scope() { return &scope_; }
  // The named factory ("" = the first one), or nullptr.
  const sy_http_filter_t* http_filter(std::string_view name) const;
  const sy_network_filter_t* network_filter(std::string_view name) const;
  // Streams currently bound to this generation: the filter chain counts them on its scope.
  int64_t streams_active() { return scope_.streams_active.load(std::memory_order_relaxed); }

 private:
  friend class Registry;
  Generation() = default;
  // Takes the module's checked descriptor D as covered copies (descriptor() and the filters).
  void adopt(const sy_module_descriptor_t* d);
  filters::ModuleScope scope_;
  std::string source_path_, copy_path_, sha256_, loaded_at_, stands_in_for_;
  Stamp stamp_;
  void* dl_ = nullptr;
  const sy_module_descriptor_t* desc_ = nullptr;  // &desc_copy_ once adopted
  sy_module_descriptor_t desc_copy_{};
  std::vector<std::unique_ptr<sy_http_filter_t>> http_tables_;
  std::vector<const sy_http_filter_t*> http_list_;  // NULL-terminated, into http_tables_
  std::vector<std::unique_ptr<sy_network_filter_t>> network_tables_;
  std::vector<const sy_network_filter_t*> network_list_;
  void* module_data_ = nullptr;
  bool gnu_unique_ = false;
  ModuleSpec spec_;      // what it was loaded from (becomes the registry's spec on publish)
  bool loaded_ = false;  // on_load succeeded, so on_unload is owed
};

// Module name -> generations. Main thread only.
class Registry {
 public:
  // STATE_DIR: where private copies go (created if missing).
  Registry(const sy_host_t* host, std::string state_dir);
  ~Registry();

  // Loads SPEC as a new generation (stamp, ABI, pin, private copy, preflight in a child process,
  // dlopen RTLD_NOW|RTLD_LOCAL, entry, descriptor checks, on_load, hand-over from the current
  // generation). Does not publish it. On failure: nullptr, ERROR says what (file / found / expected
  // / fix), and the module's load_failures counter moves.
  std::shared_ptr<Generation> load(const ModuleSpec& spec, std::string* error);
  // Whether load() first runs the module's entry and on_load in a child process (the preflight,
  // preflight.h) before dlopen'ing it here. On by default.
  void set_preflight(bool on) { preflight_ = on; }
  // Crash records and good generations across restarts (module_state.h), and what load() does
  // with a file whose sha256 crashed. Without a state (unit tests) nothing is recorded.
  void set_state(const ModuleState* state) { state_ = state; }
  void set_on_crash(config::OnModuleCrash policy) { on_crash_ = policy; }
  // Makes GEN current for its name; the previous current is kept for rollback.
  void publish(std::shared_ptr<Generation> gen);
  std::shared_ptr<Generation> current(const std::string& name) const;
  // The previous generation if it is still loaded (for POST /modules/NAME/rollback), else null.
  std::shared_ptr<Generation> previous(const std::string& name) const;
  const ModuleSpec* spec(const std::string& name) const;
  // Records the last load error for /modules.
  void set_last_error(const std::string& name, const std::string& error);
  // GET /modules: [{name, path, sha256, module_version, abi, generation, loaded_at,
  // streams_active, last_error, previous:[{generation, sha256, streams_active, loaded}],
  // stands_in_for, crashes:[{when, signal, signal_name, generation, sha256, callback, pid,
  // record}]}]
  std::string list_json() const;
  // Generations that are retired but still mapped (for tests and /modules).
  std::vector<std::string> retired_still_loaded() const;
  // Sets the streams_active gauges from the generations' counts (the filter chain keeps those
  // lock-free; call this before rendering stats). list_json() and publish() call it too.
  void update_gauges() const;

 private:
  struct Entry {
    ModuleSpec spec;
    std::shared_ptr<Generation> current;
    std::shared_ptr<Generation> previous;  // held for rollback
    std::vector<std::weak_ptr<Generation>> retired;
    // (generation, sha256) of each retired[i], so /modules can still name unloaded ones.
    std::vector<std::pair<uint64_t, std::string>> retired_info;
    std::string last_error;
    uint64_t next_generation = 1;
  };
  void retire(Entry& e, std::shared_ptr<Generation> gen);
  // SPEC's file (sha256 SHA) has the crash record CRASH: refuse it, or load the previous good
  // generation in its place, as on_crash_ says.
  std::shared_ptr<Generation> load_instead_of_crashed(const ModuleSpec& spec,
                                                      const std::string& sha,
                                                      const CrashRecord& crash, std::string* error);
  std::string copy_path_for(const std::string& sha, const std::string& path, uint64_t n) const;

  const sy_host_t* host_;
  std::string state_dir_;
  bool preflight_ = true;
  const ModuleState* state_ = nullptr;
  config::OnModuleCrash on_crash_ = config::OnModuleCrash::kPrevious;
  std::map<std::string, Entry> entries_;
};

}  // namespace sy::loader
