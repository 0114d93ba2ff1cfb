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

}  // namespace sy::tool
