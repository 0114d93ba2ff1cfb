// A module's metrics as the host table and /stats see them (module_scope.h).
#include "core/filter_chain/module_scope.h"

namespace sy::filters {

const ModuleScope::Metric* module_metric(sy_module_t* module, uint32_t id) {
  if (!module) return nullptr;
  ModuleScope* m = ModuleScope::from(module);
  std::lock_guard<std::mutex> lock(m->mu);
  return id < m->metrics.size() ? &m->metrics[id] : nullptr;
}

stats::Counter* module_host_counter(const std::string& module, const std::string& stat) {
  return stats::registry().counter("loader", {{"module", module}}, stat);
}

stats::Gauge* module_host_gauge(const std::string& module, const std::string& stat) {
  return stats::registry().gauge("loader", {{"module", module}}, stat);
}

}  // namespace sy::filters
