// The crash handler: when module code kills the process (SIGSEGV, SIGBUS, SIGABRT, SIGFPE,
// SIGILL), say which module, generation and callback was running, to standard error and in
// the generation's crash record, then die of the same signal.
#pragma once

namespace sy::loader {

// Installs the handler for the whole process and gives the calling thread an alternate signal
// stack (worker threads make theirs in filters::bind_worker_thread). Call once, at start, before
// any module is loaded. The signal's previous action (the default, unless a sanitizer or
// runtime installed one) runs after the handler, so the process still dies with that signal
// and dumps core when core dumps are enabled.
void install_crash_handler();

}  // namespace sy::loader
