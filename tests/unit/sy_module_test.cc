// sy-module, run as the built binary: check's exit codes and messages, inspect's JSON with the
// filter names found in a child process (which may crash or hang without harm), and `new`.
#include <gtest/gtest.h>
#include <switchyard/module.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/unit/loader_fixtures.h"

namespace sy::tool {
namespace {

using testfix::build_module;
using testfix::c_module;
using testfix::hand_stamp;
using testfix::read_text;

// sy-module is built beside this test binary; the tests skip when it has not been built.
std::string tool() {
  auto self = std::filesystem::read_symlink("/proc/self/exe");
  return (self.parent_path() / "sy-module").string();
}

struct ToolRun {
  int status = -1;
  std::string out, err;
};

ToolRun run(const std::string& args, const std::string& dir) {
  ToolRun r;
  std::string cmd = tool() + " " + args + " >" + dir + "/out 2>" + dir + "/err";
  int rc = std::system(cmd.c_str());
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = read_text(dir + "/out");
  r.err = read_text(dir + "/err");
  return r;
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

class SyModuleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(tool())) GTEST_SKIP() << "sy-module is not built";
  }
  testfix::TempDir dir_;
};

TEST_F(SyModuleTest, CheckAcceptsAGoodModule) {
  auto so =
      build_module(dir_.path, "good",
                   c_module("SY_MODULE_STAMP(\"good\", \"1.0.0\");", "\"good\"", "\"1.0.0\""));
  ToolRun r = run("check " + so, dir_.path);
  EXPECT_EQ(r.status, 0) << r.err;
  // Built against today's header, so the module's ABI is the host's.
  std::string abi = std::to_string(SY_ABI_MAJOR) + "." + std::to_string(SY_ABI_MINOR);
  EXPECT_EQ(r.out, so + ": OK (ABI " + abi + " on host " + abi + ")\n");
}

TEST_F(SyModuleTest, CheckRefusesWithTheLoadersMessage) {
  auto so =
      build_module(dir_.path, "wrong_major",
                   c_module(hand_stamp("wrong_major", "2", "0"), "\"wrong_major\"", "\"1.0.0\""));
  ToolRun r = run("check " + so, dir_.path);
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, so + " was built for ABI 2.0; this host provides")) << r.err;
  auto disagree = build_module(
      dir_.path, "disagree",
      c_module("SY_MODULE_STAMP(\"disagree\", \"1.0.0\");", "\"disagree\"", "\"2.0.0\""));
  r = run("check " + disagree, dir_.path);
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "stamp and descriptor disagree in " + disagree)) << r.err;
}

TEST_F(SyModuleTest, CheckRunsOnLoadInTheChild) {
  // The loader runs on_load right after the entry; check does too, in its child process, so a
  // module that would refuse to load (or crash) there fails the check.
  auto refuses = build_module(
      dir_.path, "refuses",
      c_module("SY_MODULE_STAMP(\"refuses\", \"1.0.0\");", "\"refuses\"", "\"1.0.0\"", "",
               "strcpy(err->message, \"refuses: no licence file\"); return false;"));
  ToolRun r = run("check " + refuses, dir_.path);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_TRUE(contains(r.err, "on_load failed: refuses: no licence file")) << r.err;
  auto crashes =
      build_module(dir_.path, "load_crash",
                   c_module("SY_MODULE_STAMP(\"load_crash\", \"1.0.0\");", "\"load_crash\"",
                            "\"1.0.0\"", "", "*(volatile int*)0 = 1; return true;"));
  r = run("check " + crashes, dir_.path);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_TRUE(contains(r.err, "crashed")) << r.err;
  EXPECT_TRUE(contains(r.err, "on_load")) << r.err;
  EXPECT_TRUE(contains(r.err, "signal 11")) << r.err;
}

TEST_F(SyModuleTest, InspectListsFiltersFromAChildProcess) {
  auto so =
      build_module(dir_.path, "good",
                   c_module("SY_MODULE_STAMP(\"good\", \"1.0.0\");", "\"good\"", "\"1.0.0\""));
  std::string marker = dir_.path + "/ctor";
  setenv("SY_TEST_CTOR_FILE", marker.c_str(), 1);
  ToolRun r = run("inspect " + so, dir_.path);
  unsetenv("SY_TEST_CTOR_FILE");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "\"stamp\": {\"name\": \"good\", \"version\": \"1.0.0\", \"abi\": "))
      << r.out;
  EXPECT_TRUE(contains(r.out, "\"compatible\": true")) << r.out;
  EXPECT_TRUE(contains(r.out, "\"gnu_unique\": false")) << r.out;
  EXPECT_TRUE(contains(
      r.out, "\"filters\": {\"http\": [\"add_header\", \"second\"], \"network\": [\"tap\"]}"))
      << r.out;
  EXPECT_TRUE(contains(r.out, "\"filters_from\": \"child process\"")) << r.out;
  // The module's code ran, but in the child (the tool itself never dlopens it).
  EXPECT_TRUE(std::filesystem::exists(marker));
}

TEST_F(SyModuleTest, InspectSurvivesAModuleThatCrashesWhileLoading) {
  auto so =
      build_module(dir_.path, "crash",
                   c_module("SY_MODULE_STAMP(\"crash\", \"1.0.0\");", "\"crash\"", "\"1.0.0\"",
                            "SY_MODULE_ENTRY(host, module) { (void)host; (void)module;"
                            " *(volatile int*)0 = 1; return &descriptor; }",
                            "return true;", false));
  ToolRun r = run("inspect " + so, dir_.path);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "\"filters\": null")) << r.out;
  EXPECT_TRUE(contains(r.out, "the module crashed while loading (signal 11")) << r.out;
  EXPECT_TRUE(contains(r.out, "\"compatible\": false")) << r.out;
}

TEST_F(SyModuleTest, InspectDoesNotRunAnIncompatibleModule) {
  auto so = build_module(
      dir_.path, "newer",
      c_module(hand_stamp("newer", "SY_ABI_MAJOR", "SY_ABI_MINOR + 1"), "\"newer\"", "\"1.0.0\""));
  std::string marker = dir_.path + "/ctor";
  setenv("SY_TEST_CTOR_FILE", marker.c_str(), 1);
  ToolRun r = run("inspect " + so, dir_.path);
  unsetenv("SY_TEST_CTOR_FILE");
  EXPECT_TRUE(contains(r.out, "\"compatible\": false")) << r.out;
  EXPECT_TRUE(contains(r.out, "upgrade the proxy")) << r.out;
  EXPECT_FALSE(std::filesystem::exists(marker)) << "no code of an incompatible module may run";
}

TEST_F(SyModuleTest, NewWritesProjectsThatBuildAndLoad) {
  std::string proj = dir_.path + "/proj";
  ToolRun r = run("new greet --dir " + proj, dir_.path);
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* f : {"CMakeLists.txt", "module.c", "README.md", ".gitignore"})
    EXPECT_TRUE(std::filesystem::exists(proj + "/" + f)) << f;
  std::string cmake = read_text(proj + "/CMakeLists.txt");
  EXPECT_TRUE(contains(cmake, "find_package(Switchyard 1.0 REQUIRED)"));
  EXPECT_TRUE(contains(cmake, "switchyard_add_module(greet module.c)"));
  EXPECT_TRUE(contains(read_text(proj + "/README.md"), "sy-module check build/libsy_greet.so"));

  // Build it the way pkg-config would: only the ABI header's folder on the include path.
  std::string so = proj + "/libsy_greet.so";
  std::string cmd = "cc -std=c11 -Wall -Wextra -Werror -pedantic -shared -fPIC -I" +
                    testfix::source_root() + "/abi/include -o " + so + " " + proj + "/module.c";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  r = run("inspect " + so, dir_.path);
  EXPECT_TRUE(contains(r.out, "\"filters\": {\"http\": [\"greet\"], \"network\": []}")) << r.out;

  // Never overwrites, and refuses names that cannot be module names.
  EXPECT_EQ(run("new greet --dir " + proj, dir_.path).status, 1);
  EXPECT_EQ(run("new Bad-Name --dir " + dir_.path + "/bad", dir_.path).status, 2);
  r = run("new cppmod --lang cpp --dir " + dir_.path + "/cpp", dir_.path);
  ASSERT_EQ(r.status, 0) << r.err;
  std::string src = read_text(dir_.path + "/cpp/module.cc");
  EXPECT_TRUE(contains(src, "#include <switchyard/sdk.hpp>"));
  EXPECT_TRUE(contains(src, "class MyFilter : public sy::sdk::HttpFilter"));
  EXPECT_TRUE(contains(src, "response_headers().set(\"x-cppmod\", \"hello\");"));
  EXPECT_TRUE(contains(src,
                       "SY_SDK_MODULE(\"cppmod\", \"0.1.0\", "
                       "sy::sdk::FilterFactory<MyFilter>(\"cppmod\"))\n"));
  EXPECT_TRUE(contains(read_text(dir_.path + "/cpp/CMakeLists.txt"), "-fno-gnu-unique"));

  // The C++ project builds against the SDK header (where the SDK is in this tree) and loads.
  std::string sdk = testfix::source_root() + "/abi/sdk";
  if (!std::filesystem::exists(sdk + "/switchyard/sdk.hpp")) return;
  std::string cpp_so = dir_.path + "/cpp/libsy_cppmod.so";
  cmd =
      "c++ -std=c++20 -Wall -Wextra -Werror -shared -fPIC -fno-gnu-unique -fvisibility=hidden -I" +
      testfix::source_root() + "/abi/include -I" + sdk + " -o " + cpp_so + " " + dir_.path +
      "/cpp/module.cc";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  r = run("inspect " + cpp_so, dir_.path);
  EXPECT_TRUE(contains(r.out, "\"filters\": {\"http\": [\"cppmod\"], \"network\": []}")) << r.out;
  EXPECT_TRUE(contains(r.out, "\"gnu_unique\": false")) << r.out;
}

}  // namespace
}  // namespace sy::tool
