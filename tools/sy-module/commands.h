// sy-module's subcommands; each returns the process exit code.
#pragma once

#include <string>
#include <vector>

namespace sy::tool {

// Prints the stamp, compatibility and filter names of FILE as JSON.
int inspect(const std::string& file);
// Exit 0 when this host can load FILE, else 1 and why (the loader's messages).
int check(const std::string& file);
// Writes an out-of-tree module project NAME into DIR (default ./NAME); LANG is "c" or "cpp".
int new_project(const std::string& name, const std::string& lang, const std::string& dir);

// What running a module's entry in a child process found out.
struct ChildReport {
  bool ran = false;   // the child reported back (did not crash or hang)
  std::string error;  // why not, or the loader's message about the descriptor
  std::vector<std::string> http, network;
};
// Loads FILE in a forked child (dlopen + entry with a host table of stubs), never in this
// process; gives up after TIMEOUT_MS. Only for files whose stamp and ABI already passed.
ChildReport probe_in_child(const std::string& file, int timeout_ms = 5000);

}  // namespace sy::tool
