// Which module's code this thread is running: a marker set around every call into a module,
// read by the crash handler (loader/crash_handler.cc) to say who crashed the process.
#pragma once

#include <cstdint>

namespace sy::filters {

// Who a generation is, for the crash handler. Made once per generation and never freed, so a
// marker, a queued task or a signal handler can point at one without caring when the
// generation goes: a handler must not read memory that may have been freed.
struct ModuleIdentity {
  const char* name = "";
  const char* sha256 = "";
  uint64_t generation = 0;
  // Where the crash handler writes this generation's crash record ("" = nowhere).
  const char* crash_record = "";
};

// Makes an identity that lives as long as the process (the strings are copied).
const ModuleIdentity* make_module_identity(const char* name, const char* sha256,
                                           uint64_t generation, const char* crash_record);

// One call into a module on this thread's stack; OUTER is the call it happens inside (a
// filter callback that resumes the stream runs the next filter's callbacks inside its own).
struct ModuleCall {
  const ModuleIdentity* module;  // null: module code we cannot attribute
  const char* callback;          // a string literal: "on_request_headers", "stream timer", ...
  const ModuleCall* outer;
};

// The innermost module call running on this thread, or null. Read it from a signal handler
// only on the thread the signal interrupted. constinit lets every file read it as a plain TLS
// slot, without the wrapper call C++ puts before a thread_local that may need initialising.
extern constinit thread_local const ModuleCall* t_module_call;

// The module whose code runs on this thread now (what a task or timer it sets up belongs to).
inline const ModuleIdentity* current_module() {
  return t_module_call ? t_module_call->module : nullptr;
}

// Marks the scope of one call into a module: two stores on the way in, one on the way out,
// no allocation. The compiler keeps the stores before the call: the callee is opaque code
// that could read them.
class ModuleCallMark {
 public:
  ModuleCallMark(const ModuleIdentity* module, const char* callback)
      : call_{module, callback, t_module_call} {
    t_module_call = &call_;
  }
  ~ModuleCallMark() { t_module_call = call_.outer; }
  ModuleCallMark(const ModuleCallMark&) = delete;
  ModuleCallMark& operator=(const ModuleCallMark&) = delete;

 private:
  ModuleCall call_;
};

// Gives this thread an alternate signal stack, so the crash handler still runs when a module
// overflows the thread's own stack. Each thread that runs module code calls it once; the
// stack is freed when the thread ends.
void use_crash_signal_stack();

}  // namespace sy::filters
