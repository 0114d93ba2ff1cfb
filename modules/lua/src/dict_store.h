// The storage behind handle:sharedDict(): named dictionaries shared by every worker, and by
// every generation of this module across hot swaps.
#pragma once

#include <switchyard/module.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

extern "C" {
#include <lua.h>
}

namespace sylua {

struct Entry {
  std::variant<std::string, lua_Integer, double, bool> v;
  int64_t expires_ms = 0;  // CLOCK_MONOTONIC; 0 = never
};

struct Dict {
  std::mutex mu;
  std::unordered_map<std::string, Entry> map;
  size_t next_sweep = 1024;
};

// A module's static memory is per generation: a swap loads a fresh copy of the .so. So the
// dictionaries are not statics: one DictStore is made by the first generation and handed
// from each generation to the next (on_handover_export/import), and every generation that
// holds it keeps a reference, so streams still finishing on an old generation and new ones on
// the next use the same dictionaries at the same time. The last reference frees it.
//
// The hand-over passes a pointer, which is only sound while both generations agree on this
// struct's layout: kLayout names it, and must change with any change to DictStore, Dict or
// Entry. A generation that finds another layout starts with empty dictionaries (and logs it).
struct DictStore {
  static constexpr uint32_t kLayout = 1;
  std::atomic<int> refs{1};
  std::mutex mu;
  std::unordered_map<std::string, Dict*> dicts;

  ~DictStore();
  Dict* dict(std::string_view name);  // created on first use; lives as long as the store
};

// This generation's store (made in on_load, replaced by an imported one).
DictStore& dict_store();

// Lifecycle, main thread: called from the module's on_load, on_unload and hand-over hooks.
void dict_store_load();
void dict_store_unload();
sy_str_t dict_store_export();
void dict_store_import(sy_str_t blob);

}  // namespace sylua
