// The preflight: a module's entry function and on_load run first in a forked child process, so a
// module that crashes, hangs or refuses while loading costs the child, never the proxy (or
// sy-module). One implementation for both: the loader runs it before any new generation is
// dlopen'ed into the running proxy, `sy-module check` and `inspect` run it on a file.
#pragma once

#include <switchyard/module.h>

#include <string>
#include <vector>

#include "loader/loader.h"

namespace sy::loader {

struct PreflightReport {
  bool ran = false;   // the child loaded the module, called its entry and on_load, and said so
  std::string error;  // why not: the loader's own message, or how the child died and where
  std::vector<std::string> http, network;  // filter names the descriptor lists
};

// In a forked child: dlopen(PATH, RTLD_NOW | RTLD_LOCAL), the entry function with a host table of
// stubs, the loader's descriptor checks against STAMP (read from the file beforehand; the
// preflight is for files whose stamp and ABI already passed), then on_load. The child reports
// on a pipe and ends with _exit (no on_unload, no destructors). DISPLAY names the file in
// messages (the loader preflights its private copy of DISPLAY). Gives up after TIMEOUT_MS and
// kills the child. Blocks the calling thread meanwhile. MODULE_CONFIG_JSON is what the stub
// module_config gives, the module's `config:` as the real load will give it.
PreflightReport preflight_in_child(const std::string& path, const std::string& display,
                                   const Stamp& stamp, int timeout_ms = 5000,
                                   const std::string& module_config_json = "{}");

// The loader's message for an on_load that returned false with ERR.
std::string on_load_refusal(const std::string& module, const std::string& display,
                            const sy_error_t& err);

}  // namespace sy::loader
