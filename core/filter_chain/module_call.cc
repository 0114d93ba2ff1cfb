// The per-thread module call marker, module identities, and the alternate signal stacks.
#include "core/filter_chain/module_call.h"

#include <signal.h>

#include <cstdlib>
#include <cstring>
#include <memory>

namespace sy::filters {

constinit thread_local const ModuleCall* t_module_call = nullptr;

const ModuleIdentity* make_module_identity(const char* name, const char* sha256,
                                           uint64_t generation, const char* crash_record) {
  // Leaked on purpose (a few hundred bytes per generation loaded): see ModuleIdentity.
  auto* id = new ModuleIdentity();
  id->name = strdup(name ? name : "");
  id->sha256 = strdup(sha256 ? sha256 : "");
  id->generation = generation;
  id->crash_record = strdup(crash_record ? crash_record : "");
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
