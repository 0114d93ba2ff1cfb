// `sy-module new`: writes an out-of-tree module project that builds against the installed
// Switchyard headers (CMake package or pkg-config), in C or in C++ with the SDK.
#include <switchyard/module.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "tools/sy-module/commands.h"

namespace sy::tool {
namespace {

namespace fs = std::filesystem;

// Replaces every @NAME@ in TEXT (templates read better than concatenation).
std::string fill(std::string text, const std::string& name) {
  for (size_t pos; (pos = text.find("@NAME@")) != std::string::npos;) text.replace(pos, 6, name);
  return text;
}

const char kCMakeC[] =
    R"(# sy_@NAME@: a Switchyard module, built out of tree against the installed Switchyard headers.
cmake_minimum_required(VERSION 3.16)
project(sy_@NAME@ LANGUAGES C)

# SwitchyardConfig.cmake is installed with Switchyard (`cmake --install`). If its prefix is not
# one CMake searches, configure with -DCMAKE_PREFIX_PATH=<that prefix>. Without CMake, the same
# headers come from pkg-config:
#   cc -shared -fPIC -o libsy_@NAME@.so module.c $(pkg-config --cflags switchyard-module)
find_package(Switchyard 1.0 REQUIRED)

add_library(sy_@NAME@ MODULE module.c)
target_link_libraries(sy_@NAME@ PRIVATE Switchyard::module)
# `module: @NAME@` in the proxy's config looks for libsy_@NAME@.so on module_path. Hidden
# visibility: the stamp and the entry point are exported by their macros, nothing else is.
set_target_properties(sy_@NAME@ PROPERTIES PREFIX "lib" OUTPUT_NAME "sy_@NAME@"
                                           C_VISIBILITY_PRESET hidden)
)";

const char kCMakeCpp[] =
    R"(# sy_@NAME@: a Switchyard module, built out of tree against the installed Switchyard headers.
cmake_minimum_required(VERSION 3.16)
project(sy_@NAME@ LANGUAGES CXX)

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)

# SwitchyardConfig.cmake is installed with Switchyard (`cmake --install`). If its prefix is not
# one CMake searches, configure with -DCMAKE_PREFIX_PATH=<that prefix>. Without CMake, the same
# headers come from pkg-config:
#   c++ -std=c++20 -shared -fPIC -fno-gnu-unique -o libsy_@NAME@.so module.cc \
#       $(pkg-config --cflags switchyard-module)
find_package(Switchyard 1.0 REQUIRED)

add_library(sy_@NAME@ MODULE module.cc)
target_link_libraries(sy_@NAME@ PRIVATE Switchyard::module)
# `module: @NAME@` in the proxy's config looks for libsy_@NAME@.so on module_path. Hidden
# visibility: the stamp and the entry point are exported by their macros, nothing else is.
set_target_properties(sy_@NAME@ PROPERTIES PREFIX "lib" OUTPUT_NAME "sy_@NAME@"
                                           CXX_VISIBILITY_PRESET hidden
                                           VISIBILITY_INLINES_HIDDEN ON)
# GCC marks statics of inline functions STB_GNU_UNIQUE, and glibc never unloads a library that
# has them: hot swap would leave every old version mapped. (Switchyard::module adds this too.)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(sy_@NAME@ PRIVATE -fno-gnu-unique)
endif()
)";

const char kSourceC[] =
    R"(/* @NAME@: a Switchyard module whose filter adds "x-@NAME@: hello" to every response. */
#include <switchyard/module.h>

/* Read by the proxy (and sy-module) from the file before loading it. */
SY_MODULE_STAMP("@NAME@", "0.1.0");

static const sy_host_t* host;

/* Any non-NULL value takes part in the stream; this filter keeps no per-stream state. */
static void* on_stream_create(void* config, sy_stream_t* s) {
  (void)config;
  (void)s;
  return (void*)&host;
}

static sy_filter_status_t on_response_headers(void* filter, sy_stream_t* s, bool end_stream) {
  static const char name[] = "x-@NAME@", value[] = "hello";
  (void)filter;
  (void)end_stream;
  host->header_set(s, SY_RESPONSE_HEADERS, (sy_str_t){name, sizeof name - 1},
                   (sy_str_t){value, sizeof value - 1});
  return SY_CONTINUE;
}

static const sy_http_filter_t filter = {
    .size = sizeof(sy_http_filter_t),
    .name = "@NAME@",
    .on_stream_create = on_stream_create,
    .on_response_headers = on_response_headers,
};

static const sy_http_filter_t* const http_filters[] = {&filter, NULL};

static const sy_module_descriptor_t descriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "@NAME@",
    .version = "0.1.0",
    .http_filters = http_filters,
};

SY_MODULE_ENTRY(h, module) {
  (void)module;
  host = h;
  return &descriptor;
}
)";

const char kSourceCpp[] =
    R"(// @NAME@: a Switchyard module whose filter adds "x-@NAME@: hello" to every response.
#include <switchyard/sdk.hpp>

// One object per stream; the SDK calls only the phases it overrides.
class MyFilter : public sy::sdk::HttpFilter {
 public:
  sy_filter_status_t on_response_headers(bool /*end_stream*/) override {
    response_headers().set("x-@NAME@", "hello");
    return SY_CONTINUE;
  }
};

// The stamp, the entry point and the descriptor: module "@NAME@" with one filter, "@NAME@".
SY_SDK_MODULE("@NAME@", "0.1.0", sy::sdk::FilterFactory<MyFilter>("@NAME@"))
)";

const char kReadme[] = R"(# @NAME@

A Switchyard module. Its HTTP filter, `@NAME@`, adds `x-@NAME@: hello`
to every response. Source: `@SOURCE@`.

## Build

It builds against the installed Switchyard headers; nothing of the proxy's source is needed.

```sh
cmake -S . -B build -DCMAKE_PREFIX_PATH=/usr/local   # the prefix Switchyard is installed under
cmake --build build
```

The result is `build/libsy_@NAME@.so`.

## Check

```sh
sy-module check build/libsy_@NAME@.so     # exit 0: this proxy can load it; else why not
sy-module inspect build/libsy_@NAME@.so   # its stamp, ABI and filters, as JSON
```

## Use

Declare the module and name it in a listener's `filters:`. This config is complete and needs
nothing else running: the second listener plays the upstream.

```yaml
admin:
  address: 127.0.0.1:9901
modules:
  - name: @NAME@
    path: ./build/libsy_@NAME@.so   # or put ./build on module_path: [./build]
    watch: true                     # swap in a new build when the file is replaced
listeners:
  - name: ingress
    address: 127.0.0.1:8080
    filters:
      - module: @NAME@
        filter: @NAME@              # the factory inside the module (its first when left out)
        config: {}                  # arrives in on_config_create as JSON
    routes:
      - name: all
        match: {prefix: /}
        cluster: backend
  - name: backend
    address: 127.0.0.1:8081
    routes:
      - name: hello
        match: {prefix: /}
        direct_response: {status: 200, body: "hi\n"}
clusters:
  - name: backend
    endpoints: [127.0.0.1:8081]
```

```sh
switchyard -c switchyard.yaml --validate   # loads the module and builds its config, then exits
switchyard -c switchyard.yaml &
curl -i http://127.0.0.1:8080/    # x-@NAME@: hello
```

With `watch: true`, rebuilding swaps the new build in while traffic flows; without it, ask for
the swap: `curl -X POST http://127.0.0.1:9901/modules/@NAME@/reload`. The module keys
(`name`, `path`, `sha256`, `watch`) and the filter keys (`module`, `filter`, `config`) are in
Switchyard's docs/config.md, under Modules.
)";

const char kGitignore[] = "build/\n*.so\ncompile_commands.json\n.cache/\n";

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() >= sizeof(sy_stamp_t::name)) return false;
  if (!(name[0] >= 'a' && name[0] <= 'z')) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

}  // namespace

int new_project(const std::string& name, const std::string& lang, const std::string& dir) {
  if (!valid_name(name)) {
    fprintf(stderr,
            "sy-module: '%s' is not a module name: use lower-case letters, digits and '_', "
            "starting with a letter, at most %zu characters\n",
            name.c_str(), sizeof(sy_stamp_t::name) - 1);
    return 2;
  }
  const bool cpp = lang == "cpp";
  const std::string source = cpp ? "module.cc" : "module.c";
  std::string readme = fill(kReadme, name);
  readme.replace(readme.find("@SOURCE@"), 8, source);
  const std::vector<std::pair<std::string, std::string>> files = {
      {"CMakeLists.txt", fill(cpp ? kCMakeCpp : kCMakeC, name)},
      {source, fill(cpp ? kSourceCpp : kSourceC, name)},
      {"README.md", readme},
      {".gitignore", kGitignore},
  };
  // Never overwrite: a second `new` into the same folder is almost surely a mistake.
  for (const auto& [file, text] : files) {
    if (fs::exists(fs::path(dir) / file)) {
      fprintf(stderr, "sy-module: %s already exists; choose another --dir or remove it\n",
              (fs::path(dir) / file).c_str());
      return 1;
    }
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    fprintf(stderr, "sy-module: cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  for (const auto& [file, text] : files) {
    std::ofstream out(fs::path(dir) / file, std::ios::binary);
    out << text;
    if (!out.good()) {
      fprintf(stderr, "sy-module: cannot write %s\n", (fs::path(dir) / file).c_str());
      return 1;
    }
  }
  printf("wrote %s/ (%s module '%s'):\n", dir.c_str(), cpp ? "C++" : "C", name.c_str());
  for (const auto& [file, text] : files) printf("  %s\n", file.c_str());
  printf(
      "next: cd %s && cmake -S . -B build && cmake --build build && "
      "sy-module check build/libsy_%s.so\n",
      dir.c_str(), name.c_str());
  return 0;
}

}  // namespace sy::tool
