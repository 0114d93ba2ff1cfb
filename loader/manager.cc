// Manager: filter resolution for config builds, and hot swap / rollback as config rebuilds.
#include "loader/manager.h"

#include <algorithm>
#include <cstring>

#include "core/log/log.h"
#include "loader/watcher.h"

namespace sy::loader {
namespace {

std::string message_of(const sy_error_t& e) {
  size_t n = strnlen(e.message, sizeof e.message);
  return n ? std::string(e.message, n) : std::string("rejected (no reason given)");
}

template <typename VT>
std::string names_of(const VT* const* list) {
  std::string out;
  for (size_t i = 0; list && list[i]; ++i)
    out += std::string(out.empty() ? "" : ", ") + list[i]->name;
  return out.empty() ? "none" : out;
}

// Fills what HTTP and network factories share and builds the filter's config object.
// False (with the error recorded at the filter's location) when the module rejects it.
template <typename Factory, typename VT>
bool init_factory(Factory* f, const std::shared_ptr<Generation>& gen, const VT* vt,
                  const config::FilterRef& ref, std::vector<config::Error>* errors) {
  f->keepalive = gen;
  f->scope = gen->scope();
  f->vt = vt;
  f->module = ref.module;
  f->filter_name = vt->name ? vt->name : "";
  f->loc = ref.loc;
  if (!vt->on_config_create) return true;
  sy_error_t err{};
  {
    filters::ModuleCallMark mark(gen->scope()->identity, "on_config_create");
    f->config = vt->on_config_create(gen->module_data(),
                                     {ref.config_json.data(), ref.config_json.size()}, &err);
  }
  if (!f->config && err.message[0]) {
    errors->push_back(
        {ref.loc, "filter '" + ref.module + "' rejected its config: " + message_of(err)});
    return false;
  }
  // NULL is the only way on_config_create can refuse, so a NULL without a message is a refusal
  // too: accepting it would leave a filter in the chain that never runs.
  if (!f->config) {
    errors->push_back({ref.loc, "filter '" + f->filter_name + "' of module '" + ref.module +
                                    "' rejected its config without saying why: its "
                                    "on_config_create returned NULL and left the message empty"});
    return false;
  }
  return true;
}

}  // namespace

Manager::Manager(const std::string& state_dir)
    : state_(state_dir), run_dir_(state_.dir()), registry_(filters::host_table(), run_dir_.path()) {
  registry_.set_state(&state_);
}

Manager::~Manager() = default;

void Manager::begin(const config::Config& cfg) {
  // In a running proxy a module that crashes while loading would take every connection down:
  // there the preflight always runs. At start there is nothing to lose yet but time (a few ms
  // per module), so the config may skip it.
  registry_.set_preflight(running_ || cfg.module_preflight_at_start);
  registry_.set_on_crash(cfg.on_module_crash);
  module_path_ = cfg.module_path;
  declared_ = cfg.modules;
}

ModuleSpec Manager::spec_for(const std::string& name, std::string* error) const {
  ModuleSpec spec;
  spec.name = name;
  for (const auto& m : declared_) {
    if (m.name != name) continue;
    spec.path = m.path;
    spec.sha256 = m.sha256;
    spec.watch = m.watch;
    spec.config_json = m.config_json;
  }
  if (spec.path.empty()) spec.path = find_on_path(module_path_, name);
  if (spec.path.empty()) {
    std::string where;
    for (const auto& p : module_path_) where += (where.empty() ? "" : ", ") + p;
    *error = "module '" + name + "' not found: no libsy_" + name + ".so in module_path [" + where +
             "]; declare it under modules: with a path, or add its folder to module_path";
  }
  auto o = path_override_.find(name);
  if (o != path_override_.end()) spec.path = o->second;
  return spec;
}

std::shared_ptr<Generation> Manager::generation_for(const std::string& name,
                                                    const config::Location& loc,
                                                    std::vector<config::Error>* errors) {
  if (auto it = pending_.find(name); it != pending_.end()) return it->second;
  if (auto it = rollback_.find(name); it != rollback_.end()) {
    pending_[name] = it->second;
    return it->second;
  }
  std::string error;
  auto swap = swap_.find(name);
  if (swap != swap_.end() && !swap->second.empty()) path_override_pending_[name] = swap->second;
  ModuleSpec spec = spec_for(name, &error);
  if (swap != swap_.end() && !swap->second.empty()) spec.path = swap->second;
  if (spec.path.empty()) {
    errors->push_back({loc, error});
    return nullptr;
  }
  auto cur = registry_.current(name);
  bool same_pin = spec.sha256.empty() || (cur && cur->sha256() == spec.sha256);
  // A changed module `config:` needs a new generation: the module read the old one in on_load.
  bool same_config = cur && cur->config_json() == spec.config_json;
  if (cur && swap == swap_.end() && cur->requested_path() == spec.path && same_pin && same_config)
    return cur;
  auto gen = registry_.load(spec, &error);
  if (!gen) {
    errors->push_back({loc, error});
    return nullptr;
  }
  pending_[name] = gen;
  return gen;
}

std::shared_ptr<filters::HttpFilterFactory> Manager::http(const config::Listener& listener,
                                                          const config::FilterRef& ref,
                                                          std::vector<config::Error>* errors) {
  auto gen = generation_for(ref.module, ref.loc, errors);
  if (!gen) return nullptr;
  const sy_http_filter_t* vt = gen->http_filter(ref.filter);
  if (!vt) {
    errors->push_back({ref.loc, "module '" + ref.module + "' has no HTTP filter" +
                                    (ref.filter.empty() ? "" : " '" + ref.filter + "'") +
                                    " (it has: " + names_of(gen->descriptor()->http_filters) +
                                    ")"});
    return nullptr;
  }
  auto* f = new filters::HttpFilterFactory();
  auto factory = filters::make_main_thread_shared(f);
  if (!init_factory(f, gen, vt, ref, errors)) return nullptr;
  // Per-route configs: `per_filter:` keys name the module or the filter.
  for (const auto& route : listener.routes) {
    for (const auto& [key, pf] : route.per_filter) {
      if (key != ref.module && key != f->filter_name) continue;
      filters::HttpFilterFactory::RouteConfig rc;
      const std::string& json = pf.json;
      if (pf.disabled) {
        rc.disabled = true;
      } else if (vt->on_route_config_create) {
        sy_error_t err{};
        filters::ModuleCallMark mark(gen->scope()->identity, "on_route_config_create");
        rc.config =
            vt->on_route_config_create(gen->module_data(), {json.data(), json.size()}, &err);
        if (!rc.config && err.message[0]) {
          errors->push_back({route.loc, "filter '" + ref.module +
                                            "' rejected the per-route config of route '" +
                                            route.name + "': " + message_of(err)});
          continue;
        }
      }
      f->route_configs[route.name] = rc;
    }
  }
  return factory;
}

std::shared_ptr<filters::NetworkFilterFactory> Manager::network(
    const config::Listener& /*listener*/, const config::FilterRef& ref,
    std::vector<config::Error>* errors) {
  auto gen = generation_for(ref.module, ref.loc, errors);
  if (!gen) return nullptr;
  const sy_network_filter_t* vt = gen->network_filter(ref.filter);
  if (!vt) {
    errors->push_back({ref.loc, "module '" + ref.module + "' has no network filter" +
                                    (ref.filter.empty() ? "" : " '" + ref.filter + "'") +
                                    " (it has: " + names_of(gen->descriptor()->network_filters) +
                                    ")"});
    return nullptr;
  }
  auto* f = new filters::NetworkFilterFactory();
  auto factory = filters::make_main_thread_shared(f);
  if (!init_factory(f, gen, vt, ref, errors)) return nullptr;
  return factory;
}

void Manager::commit() {
  running_ = true;
  for (auto& [name, gen] : pending_) {
    if (registry_.current(name) != gen) registry_.publish(gen);
    registry_.set_last_error(name, "");
  }
  for (auto& [name, path] : path_override_pending_) path_override_[name] = path;
  pending_.clear();
  swap_.clear();
  rollback_.clear();
  path_override_pending_.clear();
  sync_watchers();
}

void Manager::abort() {
  pending_.clear();
  swap_.clear();
  rollback_.clear();
  path_override_pending_.clear();
}

std::string Manager::prepare_swap(const std::string& name, const std::string& path) {
  if (!registry_.current(name)) return "module '" + name + "' is not loaded";
  swap_[name] = path;
  return "";
}

std::string Manager::prepare_rollback(const std::string& name) {
  auto prev = registry_.previous(name);
  if (!prev) return "module '" + name + "' has no previous generation still loaded";
  rollback_[name] = prev;
  return "";
}

uint64_t Manager::generation(const std::string& name) const {
  auto cur = registry_.current(name);
  return cur ? cur->number() : 0;
}

void Manager::record_error(const std::string& name, const std::string& error) {
  registry_.set_last_error(name, error);
}

std::string Manager::list_json() const { return registry_.list_json(); }

void Manager::watch(uv_loop_t* loop, std::function<void(const std::string& name)> on_change) {
  watch_loop_ = loop;
  on_change_ = std::move(on_change);
  sync_watchers();
}

void Manager::sync_watchers() {
  if (!watch_loop_) return;
  std::map<std::string, std::string> want;
  for (const auto& m : declared_)
    if (m.watch && registry_.current(m.name)) want[m.name] = m.path;
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    if (want.count(it->first) && want[it->first] == it->second->path()) {
      ++it;
    } else {
      it = watchers_.erase(it);
    }
  }
  for (const auto& [name, path] : want) {
    if (watchers_.count(name)) continue;
    std::string n = name;
    watchers_[name] =
        std::make_unique<FileWatcher>(watch_loop_, path, [this, n](const std::string&) {
          if (on_change_) on_change_(n);
        });
  }
}

}  // namespace sy::loader
