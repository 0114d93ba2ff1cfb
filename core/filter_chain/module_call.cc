// The per-thread module call marker, module identities, and the alternate signal stacks.
#include "core/filter_chain/module_call.h"

#include <signal.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

namespace sy::filters {

constinit thread_local const ModuleCall* t_module_call = nullptr;

namespace {

// Every identity made, so that the memory kept on purpose stays reachable from a global until
// exit: LeakSanitizer reports it as a leak otherwise. The list is never destroyed, so an
// identity is still there for a crash handler running during exit.
constinit std::mutex g_identities_mu;
std::vector<const ModuleIdentity*>& identities() {
  static auto* all = new std::vector<const ModuleIdentity*>;
  return *all;
}

}  // namespace

const ModuleIdentity* make_module_identity(const char* name, const char* sha256,
                                           uint64_t generation, const char* crash_record) {
  // Kept on purpose for the life of the process (a few hundred bytes per generation loaded):
  // see ModuleIdentity.
  auto* id = new ModuleIdentity();
  id->name = strdup(name ? name : "");
  id->sha256 = strdup(sha256 ? sha256 : "");
  id->generation = generation;
  id->crash_record = strdup(crash_record ? crash_record : "");
  std::lock_guard<std::mutex> lock(g_identities_mu);
  identities().push_back(id);
  return id;
}

namespace {

// The thread's alternate stack; switched off and freed when the thread ends.
struct SignalStack {
  std::unique_ptr<char[]> mem;
  size_t size = 0;
  ~SignalStack() {
    if (!mem) return;
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, nullptr);
  }
};
thread_local SignalStack t_stack;

}  // namespace

void use_crash_signal_stack() {
  if (t_stack.mem) return;
  // SIGSTKSZ is small and, since glibc 2.34, not a constant; the handler formats a few
  // hundred bytes of text on it, so a generous fixed size is simplest.
  t_stack.size = 64 * 1024;
  t_stack.mem = std::make_unique<char[]>(t_stack.size);
  stack_t ss{};
  ss.ss_sp = t_stack.mem.get();
  ss.ss_size = t_stack.size;
  if (sigaltstack(&ss, nullptr) != 0) t_stack.mem.reset();
}

}  // namespace sy::filters
