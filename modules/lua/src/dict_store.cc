// The sharedDict store's life across generations (see dict_store.h).
#include "dict_store.h"

#include <cstring>

#include "lua_module.h"

namespace sylua {
namespace {

DictStore* g_store = nullptr;

// What crosses the hand-over: a tag, the layout, and the store. Only the host passes it, and
// only from this module's previous generation to its next, so the pointer is never forged by
// another module (unlike process-wide shared data, which any module may write).
struct Blob {
  char tag[8];
  uint32_t layout;
  uint32_t reserved;
  DictStore* store;
};
constexpr char kTag[8] = {'s', 'y', 'l', 'u', 'a', 'd', 'c', 't'};
Blob g_blob;

void release(DictStore* s) {
  if (s && s->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete s;
}

}  // namespace

DictStore::~DictStore() {
  for (auto& [name, d] : dicts) delete d;
}

Dict* DictStore::dict(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu);
  auto it = dicts.find(std::string(name));
  if (it != dicts.end()) return it->second;
  auto* d = new Dict();
  dicts.emplace(std::string(name), d);
  return d;
}

DictStore& dict_store() { return *g_store; }

void dict_store_load() { g_store = new DictStore(); }

void dict_store_unload() {
  release(g_store);
  g_store = nullptr;
}

sy_str_t dict_store_export() {
  std::memcpy(g_blob.tag, kTag, sizeof kTag);
  g_blob.layout = DictStore::kLayout;
  g_blob.reserved = 0;
  g_blob.store = g_store;
  return {reinterpret_cast<const char*>(&g_blob), sizeof g_blob};
}

void dict_store_import(sy_str_t state) {
  Blob b;
  if (!state.ptr || state.len != sizeof b) return;  // an older generation that passed nothing
  std::memcpy(&b, state.ptr, sizeof b);
  if (std::memcmp(b.tag, kTag, sizeof kTag) != 0 || !b.store) return;
  if (b.layout != DictStore::kLayout) {
    log(SY_LOG_WARN, "sharedDict: the previous generation keeps its dictionaries in layout " +
                         std::to_string(b.layout) + ", this one in " +
                         std::to_string(DictStore::kLayout) +
                         ": this generation starts with empty dictionaries");
    return;
  }
  // Still empty: configs (and so Lua states) are built only after the hand-over.
  b.store->refs.fetch_add(1, std::memory_order_acq_rel);
  release(g_store);
  g_store = b.store;
}

}  // namespace sylua
