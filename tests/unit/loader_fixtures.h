// Tiny fixture modules for the loader tests, one per failure mode, compiled by the tests
// themselves with the system compiler against abi/include.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace sy::testfix {

inline std::string source_root() {
  // __FILE__ is absolute under CMake; tests/unit/<this file> -> the repository root.
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().string();
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A fresh directory under TMPDIR, removed when the object goes.
struct TempDir {
  std::string path;
  TempDir() {
    const char* t = getenv("TMPDIR");
    std::string tmpl = std::string(t && *t ? t : "/tmp") + "/sy-loader-test.XXXXXX";
    path = mkdtemp(tmpl.data()) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

// Compiles SOURCE (C, or C++ when CPP) into DIR/libsy_NAME.so; "" and a test failure on error.
inline std::string build_module(const std::string& dir, const std::string& name,
                                const std::string& source, bool cpp = false,
                                const std::string& flags = "") {
  std::string src = dir + "/" + name + (cpp ? ".cc" : ".c");
  std::string out = dir + "/libsy_" + name + ".so";
  write_text(src, source);
  std::string cmd = std::string(cpp ? "c++ -std=c++20" : "cc -std=c11") +
                    " -shared -fPIC -O1 -w -I" + source_root() + "/abi/include " + flags + " -o " +
                    out + " " + src + " 2>" + dir + "/" + name + ".log";
  if (std::system(cmd.c_str()) != 0) {
    ADD_FAILURE() << "fixture " << name << " did not compile:\n"
                  << read_text(dir + "/" + name + ".log");
    return "";
  }
  return out;
}

// Common parts of the C fixtures: a descriptor builder over NAME / VERSION, with hooks that
// prove what ran (files named by environment variables) and a hand-over blob.
inline std::string c_module(const std::string& stamp, const std::string& desc_name,
                            const std::string& desc_version, const std::string& extra = "",
                            const std::string& on_load_body = "return true;",
                            bool with_entry = true) {
  std::string s = R"(
#include <switchyard/module.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

)" + stamp + R"(

/* Proves whether any code of this module ran: a static constructor. */
__attribute__((constructor)) static void fixture_ctor(void) {
  const char* p = getenv("SY_TEST_CTOR_FILE");
  if (p) { FILE* f = fopen(p, "a"); if (f) { fputs("ctor\n", f); fclose(f); } }
}

static char state[128];
static bool on_load(sy_module_t* m, void** data, sy_error_t* err) {
  (void)m; (void)err;
  *data = state;
  )" + on_load_body +
                  R"(
}
static void on_unload(void* data) {
  const char* p = getenv("SY_TEST_UNLOAD_FILE");
  if (p) { FILE* f = fopen(p, "a"); if (f) { fprintf(f, "unload %s\n", (char*)data); fclose(f); } }
}
static sy_str_t on_export(void* data) {
  (void)data;
  static const char blob[] = "handover-blob";
  sy_str_t s = {blob, sizeof blob - 1};
  return s;
}
static void on_import(void* data, sy_str_t blob) {
  memcpy(data, blob.ptr, blob.len < 127 ? blob.len : 127);
}
static const sy_http_filter_t add_header = {sizeof(sy_http_filter_t), "add_header"};
static const sy_http_filter_t second = {sizeof(sy_http_filter_t), "second"};
static const sy_http_filter_t* const http[] = {&add_header, &second, NULL};
static const sy_network_filter_t tap = {sizeof(sy_network_filter_t), "tap"};
static const sy_network_filter_t* const net[] = {&tap, NULL};
static const sy_module_descriptor_t descriptor = {
    sizeof(sy_module_descriptor_t), SY_ABI_MAJOR, SY_ABI_MINOR, )" +
                  desc_name + ", " + desc_version + R"(,
    on_load, on_unload, on_export, on_import, http, net};
)" + extra;
  if (with_entry)
    s += "\nSY_MODULE_ENTRY(host, module) { (void)host; (void)module; return &descriptor; }\n";
  return s;
}

inline std::string hand_stamp(const std::string& name, const std::string& major,
                              const std::string& minor) {
  return "__attribute__((section(SY_STAMP_SECTION), used, visibility(\"default\")))\n"
         "const sy_stamp_t sy_module_stamp = {{'S','Y','M','O','D','U','L','E'}, "
         "sizeof(sy_stamp_t), " +
         major + ", " + minor + ", \"" + name + "\", \"1.0.0\"};";
}

}  // namespace sy::testfix
