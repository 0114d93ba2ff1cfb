// Filter and per-route configs (Envoy's field names), and the registry that lets identical
// scripts share their per-worker Lua states.
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "lua_module.h"

namespace sylua {
namespace {

std::mutex g_sets_mu;
std::map<std::string, std::weak_ptr<VmSet>> g_sets;  // share key -> set

int64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool read_file(const std::string& path, std::string* out, std::string* err) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    *err = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

// LuaJIT-only modules cannot work here; say so when the config loads, not on the first
// request that reaches the require.
bool refuse_luajit_only(const std::string& code, const std::string& where, std::string* err) {
  for (const char* mod : {"ffi", "jit"}) {
    size_t pos = 0;
    while ((pos = code.find("require", pos)) != std::string::npos) {
      size_t p = pos + 7;
      pos = p;
      while (p < code.size() && (code[p] == ' ' || code[p] == '(' || code[p] == '\t')) ++p;
      if (p >= code.size() || (code[p] != '"' && code[p] != '\'')) continue;
      char q = code[p++];
      size_t n = std::strlen(mod);
      if (code.compare(p, n, mod) != 0 || p + n >= code.size() || code[p + n] != q) continue;
      int line = 1;
      for (size_t i = 0; i < p; ++i) line += code[i] == '\n';
      *err = where + ":" + std::to_string(line) + ": require(\"" + mod + "\"): LuaJIT's " + mod +
             " module does not exist on Lua 5.4; Switchyard runs Envoy scripts on PUC Lua 5.4 "
             "(use plain Lua, or a C module through package_cpaths)";
      return false;
    }
  }
  return true;
}

bool parse_size(const json::Value& v, uint64_t* out, std::string* err, const char* what) {
  if (v.kind == json::Value::Number && v.integral && v.i >= 0) {
    *out = uint64_t(v.i);
    return true;
  }
  if (v.kind == json::Value::String) {
    const std::string& s = v.str;
    size_t i = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i > 0) {
      uint64_t n = std::stoull(s.substr(0, i));
      std::string unit = s.substr(i);
      uint64_t mul = 0;
      if (unit.empty() || unit == "B") mul = 1;
      if (unit == "KiB" || unit == "K" || unit == "k" || unit == "KB") mul = 1024;
      if (unit == "MiB" || unit == "M" || unit == "m" || unit == "MB") mul = 1024 * 1024;
      if (unit == "GiB" || unit == "G" || unit == "g" || unit == "GB") mul = 1024ull * 1024 * 1024;
      if (mul) {
        *out = n * mul;
        return true;
      }
    }
  }
  *err = std::string(what) + ": expected a size such as 65536 or \"64MiB\"";
  return false;
}

bool check_keys(const json::Value& obj, std::initializer_list<const char*> known,
                const std::string& where, std::string* err) {
  for (const auto& [k, v] : obj.obj) {
    bool ok = false;
    for (const char* n : known) ok = ok || k == n;
    if (ok) continue;
    std::string list;
    for (const char* n : known) list += std::string(list.empty() ? "" : ", ") + n;
    *err = where + "unknown key '" + k + "' (expected one of: " + list + ")";
    return false;
  }
  return true;
}

bool string_list(const json::Value* v, std::vector<std::string>* out, const char* what,
                 std::string* err) {
  if (!v) return true;
  if (v->kind != json::Value::Array) {
    *err = std::string(what) + ": expected a list of strings";
    return false;
  }
  for (const auto& e : v->arr) {
    if (e.kind != json::Value::String) {
      *err = std::string(what) + ": expected a list of strings";
      return false;
    }
    out->push_back(e.str);
  }
  return true;
}

bool parse_settings(const json::Value& obj, Settings* s, bool* watch, std::string* err) {
  if (!string_list(obj.find("package_paths"), &s->package_paths, "package_paths", err) ||
      !string_list(obj.find("package_cpaths"), &s->package_cpaths, "package_cpaths", err))
    return false;
  if (const auto* w = obj.find("watch")) {
    if (w->kind != json::Value::Bool) {
      *err = "watch: expected true or false";
      return false;
    }
    *watch = w->b;
  }
  if (const auto* l = obj.find("limits")) {
    if (!l->is_object()) {
      *err = "limits: expected a map with instructions and memory";
      return false;
    }
    if (!check_keys(*l, {"instructions", "memory"}, "limits: ", err)) return false;
    if (const auto* i = l->find("instructions")) {
      if (i->kind != json::Value::Number || !i->integral || i->i < 0) {
        *err = "limits.instructions: expected a count (0 = no budget)";
        return false;
      }
      s->limits.instructions = uint64_t(i->i);
    }
    if (const auto* m = l->find("memory"))
      if (!parse_size(*m, &s->limits.memory, err, "limits.memory")) return false;
  }
  return true;
}

// An Envoy DataSource: a string (inline), or {inline_string}, {filename}, {environment_variable}.
bool parse_source(const json::Value& v, const std::string& what, std::string* code,
                  std::string* chunkname, std::string* filename, std::string* err) {
  if (v.kind == json::Value::String) {
    *code = v.str;
    *chunkname = v.str;  // as luaL_loadstring: messages show [string "<first line>..."]
    return true;
  }
  if (!v.is_object() || v.obj.size() != 1) {
    *err = what +
           ": expected the script as a string, or one of inline_string, filename, "
           "environment_variable";
    return false;
  }
  const auto& [k, val] = v.obj.front();
  if (val.kind != json::Value::String) {
    *err = what + "." + k + ": expected a string";
    return false;
  }
  if (k == "inline_string") {
    *code = val.str;
    *chunkname = val.str;
    return true;
  }
  if (k == "filename") {
    *filename = val.str;
    *chunkname = "@" + val.str;
    std::string why;
    if (!read_file(val.str, code, &why)) {
      *err = what + ".filename: " + why;
      return false;
    }
    return true;
  }
  if (k == "environment_variable") {
    const char* e = std::getenv(val.str.c_str());
    if (!e) {
      *err = what + ".environment_variable: " + val.str + " is not set";
      return false;
    }
    *code = e;
    *chunkname = e;
    return true;
  }
  *err = what + ": unknown source '" + k +
         "' (expected inline_string, filename or "
         "environment_variable)";
  return false;
}

std::shared_ptr<VmSet> source_set(const json::Value& v, const std::string& what,
                                  const Settings& settings, bool watch, std::string* err) {
  std::string code, chunkname, filename;
  if (!parse_source(v, what, &code, &chunkname, &filename, err)) return nullptr;
  std::string why;
  auto set = make_vmset(code, chunkname, filename, watch && !filename.empty(), settings, &why);
  if (!set) *err = what + ": " + why;
  return set;
}

bool meta_value(const json::Value* v, const char* what, json::Value* out, std::string* err) {
  if (!v) return true;
  if (!v->is_object()) {
    *err = std::string(what) + ": expected a map";
    return false;
  }
  *out = *v;
  return true;
}

}  // namespace

std::string Settings::key() const {
  std::string k;
  for (const auto& p : package_paths) k.append(p).push_back(';');
  k.push_back('|');
  for (const auto& p : package_cpaths) k.append(p).push_back(';');
  k.push_back('|');
  k.append(std::to_string(limits.instructions)).push_back('|');
  k.append(std::to_string(limits.memory));
  return k;
}

void Stats::define(const std::string& stat_prefix) {
  prefix = stat_prefix.empty() ? "" : stat_prefix + ".";
  auto def = [&](const char* name, uint32_t* id) {
    std::string n = prefix + name;
    g_host->metric_define(g_module, SY_COUNTER, S(n), nullptr, 0, id);
  };
  def("errors", &errors);
  def("executions", &executions);
  def("budget_exceeded", &budget_exceeded);
  def("memory_exceeded", &memory_exceeded);
  def("script_reloads", &script_reloads);
  def("script_reload_errors", &script_reload_errors);
}

std::shared_ptr<VmSet> make_vmset(const std::string& code, const std::string& chunkname,
                                  const std::string& filename, bool watch, const Settings& settings,
                                  std::string* err) {
  if (!refuse_luajit_only(code, filename.empty() ? "script" : filename, err)) return nullptr;
  std::string key;
  if (!watch) key = settings.key() + '\0' + chunkname + '\0' + code;
  if (!key.empty()) {
    std::lock_guard<std::mutex> lock(g_sets_mu);
    auto it = g_sets.find(key);
    if (it != g_sets.end())
      if (auto set = it->second.lock()) return set;
  }
  // Validate on a scratch state, as Envoy does on its main thread: syntax, top-level errors.
  if (!Vm::create(code, chunkname, settings, false, err)) return nullptr;
  auto set = std::make_shared<VmSet>();
  set->code = code;
  set->chunkname = chunkname;
  set->filename = filename;
  set->watch = watch;
  set->settings = settings;
  set->share_key = key;
  set->loaded_hash = std::hash<std::string>()(code);
  set->good_code = code;
  set->slots.resize(std::max<uint32_t>(1, g_host->worker_count()));
  if (!key.empty()) {
    std::lock_guard<std::mutex> lock(g_sets_mu);
    g_sets[key] = set;
  }
  return set;
}

VmSet::~VmSet() {
  if (share_key.empty()) return;
  std::lock_guard<std::mutex> lock(g_sets_mu);
  auto it = g_sets.find(share_key);
  if (it != g_sets.end() && it->second.expired()) g_sets.erase(it);
}

std::shared_ptr<Vm> VmSet::get(int worker, const Stats& stats) {
  if (worker < 0 || size_t(worker) >= slots.size()) return nullptr;
  Slot& sl = slots[worker];
  if (sl.vm && sl.vm->poisoned) sl.vm.reset();
  if (watch) {
    int64_t now = now_ms();
    if (!sl.vm || now >= sl.next_check_ms) {
      // Re-read at most twice a second; a broken edit keeps the running script.
      sl.next_check_ms = now + 500;
      struct stat st;
      bool changed = false;
      if (::stat(filename.c_str(), &st) == 0) {
        changed = st.st_size != sl.size || st.st_ino != sl.ino ||
                  st.st_mtim.tv_sec != sl.mtime.tv_sec || st.st_mtim.tv_nsec != sl.mtime.tv_nsec;
        if (changed) {
          sl.size = st.st_size;
          sl.ino = st.st_ino;
          sl.mtime = st.st_mtim;
        }
      }
      if (changed || !sl.vm) {
        std::string code, err;
        std::shared_ptr<Vm> vm;
        if (read_file(filename, &code, &err) && refuse_luajit_only(code, filename, &err))
          vm = Vm::create(code, chunkname, settings, true, &err);
        size_t h = std::hash<std::string>()(code);
        bool first;  // the first worker to meet this version of the file
        size_t good_hash;
        {
          std::lock_guard<std::mutex> lock(seen_mu);
          size_t& seen = vm ? loaded_hash : failed_hash;
          first = seen != h;
          seen = h;
          if (vm)
            good_code = code;
          else
            code = good_code;
          good_hash = loaded_hash;
        }
        if (vm) {
          if (first) {
            stats.inc(stats.script_reloads);
            log(SY_LOG_INFO, "reloaded " + filename);
          }
          sl.vm = std::move(vm);  // streams on the old state keep it until they end
          sl.hash = h;
        } else {
          if (first) {
            stats.inc(stats.script_reload_errors);
            log(SY_LOG_ERROR, filename + ": " + err + " (the previous version keeps running)");
          }
          // This worker may not have met the last good version yet (edits closer together
          // than its checks): it runs that one, not an older one.
          if (!sl.vm || sl.hash != good_hash) {
            if (auto good = Vm::create(code, chunkname, settings, true, &err)) {
              sl.vm = std::move(good);
              sl.hash = good_hash;
            }
          }
        }
      }
    }
    return sl.vm;
  }
  if (!sl.vm) {
    std::string err;
    sl.vm = Vm::create(code, chunkname, settings, true, &err);
    if (!sl.vm) log(SY_LOG_ERROR, "cannot create the Lua state: " + err);
  }
  return sl.vm;
}

FilterConfig* parse_filter_config(std::string_view text, std::string* err) {
  json::Value v;
  if (!json::parse(text, &v, err)) return nullptr;
  if (!v.is_object()) {
    *err = "expected a map";
    return nullptr;
  }
  if (!check_keys(v,
                  {"default_source_code", "inline_code", "source_codes", "stat_prefix",
                   "clear_route_cache", "filter_context", "metadata", "virtual_host_metadata",
                   "package_paths", "package_cpaths", "watch", "limits"},
                  "", err))
    return nullptr;
  auto cfg = std::make_unique<FilterConfig>();
  if (!parse_settings(v, &cfg->settings, &cfg->watch, err)) return nullptr;
  const json::Value* def = v.find("default_source_code");
  const json::Value* inl = v.find("inline_code");
  if (def && inl) {
    *err = "set default_source_code or inline_code (deprecated), not both";
    return nullptr;
  }
  if (inl) {
    if (inl->kind != json::Value::String) {
      *err = "inline_code: expected a string";
      return nullptr;
    }
    def = inl;
  }
  if (def) {
    cfg->default_script = source_set(*def, inl ? "inline_code" : "default_source_code",
                                     cfg->settings, cfg->watch, err);
    if (!cfg->default_script) return nullptr;
  }
  if (const auto* sc = v.find("source_codes")) {
    if (!sc->is_object()) {
      *err = "source_codes: expected a map of name to script";
      return nullptr;
    }
    for (const auto& [name, src] : sc->obj) {
      auto set = source_set(src, "source_codes." + name, cfg->settings, cfg->watch, err);
      if (!set) return nullptr;
      cfg->named[name] = set;
    }
  }
  if (const auto* p = v.find("stat_prefix")) {
    if (p->kind != json::Value::String) {
      *err = "stat_prefix: expected a string";
      return nullptr;
    }
    cfg->stat_prefix = p->str;
  }
  if (const auto* c = v.find("clear_route_cache")) {
    if (c->kind != json::Value::Bool) {
      *err = "clear_route_cache: expected true or false";
      return nullptr;
    }
    cfg->clear_route_cache = c->b;
  }
  if (!meta_value(v.find("filter_context"), "filter_context", &cfg->filter_context, err) ||
      !meta_value(v.find("metadata"), "metadata", &cfg->metadata, err) ||
      !meta_value(v.find("virtual_host_metadata"), "virtual_host_metadata", &cfg->vhost_metadata,
                  err))
    return nullptr;
  cfg->stats.define(cfg->stat_prefix);
  return cfg.release();
}

RouteConfig* parse_route_config(std::string_view text, std::string* err) {
  json::Value v;
  if (!json::parse(text, &v, err)) return nullptr;
  if (!v.is_object()) {
    *err = "expected a map";
    return nullptr;
  }
  if (!check_keys(v,
                  {"disabled", "name", "source_code", "filter_context", "metadata", "package_paths",
                   "package_cpaths", "watch", "limits"},
                  "", err))
    return nullptr;
  auto rc = std::make_unique<RouteConfig>();
  const json::Value* name = v.find("name");
  const json::Value* src = v.find("source_code");
  const json::Value* dis = v.find("disabled");
  if ((name != nullptr) + (src != nullptr) + (dis != nullptr && dis->b) > 1) {
    *err = "set one of disabled, name and source_code";
    return nullptr;
  }
  if (name) {
    if (name->kind != json::Value::String) {
      *err = "name: expected a string (a key of the filter's source_codes)";
      return nullptr;
    }
    rc->has_name = true;
    rc->name = name->str;
  }
  Settings settings;
  bool watch = false;
  if (!parse_settings(v, &settings, &watch, err)) return nullptr;
  if (src) {
    rc->script = source_set(*src, "source_code", settings, watch, err);
    if (!rc->script) return nullptr;
  }
  if (!meta_value(v.find("filter_context"), "filter_context", &rc->filter_context, err) ||
      !meta_value(v.find("metadata"), "metadata", &rc->metadata, err))
    return nullptr;
  return rc.release();
}

}  // namespace sylua
