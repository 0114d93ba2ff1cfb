// Loader: the stamp reader and ABI rule on real fixture modules (one per failure mode), and the
// registry's generations: private copies, hand-over, publish / rollback, unload verified.
#include "loader/loader.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "core/filter_chain/factory.h"
#include "core/stats/stats.h"
#include "tests/unit/loader_fixtures.h"

namespace sy::loader {
namespace {

using testfix::build_module;
using testfix::c_module;
using testfix::hand_stamp;
using testfix::read_text;
using testfix::write_text;

// gmock's HasSubstr without linking gmock: the haystack is printed when the needle is missing.
::testing::AssertionResult Contains(const std::string& hay, const std::string& needle) {
  if (hay.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << needle << "\"\n  is not in\n\"" << hay << "\"";
}
#define EXPECT_CONTAINS(hay, needle) EXPECT_TRUE(Contains(hay, needle))

std::string host_abi() { return std::to_string(SY_ABI_MAJOR) + "." + std::to_string(SY_ABI_MINOR); }

uint64_t counter_value(const std::string& module, const std::string& name) {
  return filters::module_host_counter(module, name)->value();
}

class LoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    filters::set_main_executor([](auto fn) { fn(); });
    dir_ = new testfix::TempDir();
    const std::string& d = dir_->path;
    const std::string good_stamp = "SY_MODULE_STAMP(\"good\", \"1.0.0\");";
    good_ = build_module(d, "good", c_module(good_stamp, "\"good\"", "\"1.0.0\""));
    wrong_major_ =
        build_module(d, "wrong_major",
                     c_module(hand_stamp("wrong_major", "2", "0"), "\"wrong_major\"", "\"1.0.0\""));
    newer_minor_ =
        build_module(d, "newer_minor",
                     c_module(hand_stamp("newer_minor", "SY_ABI_MAJOR", "SY_ABI_MINOR + 1"),
                              "\"newer_minor\"", "\"1.0.0\""));
    no_stamp_ = build_module(d, "no_stamp", c_module("", "\"no_stamp\"", "\"1.0.0\""));
    no_entry_ = build_module(d, "no_entry",
                             c_module("SY_MODULE_STAMP(\"no_entry\", \"1.0.0\");", "\"no_entry\"",
                                      "\"1.0.0\"", "", "return true;", false));
    disagree_ = build_module(
        d, "disagree",
        c_module("SY_MODULE_STAMP(\"disagree\", \"1.0.0\");", "\"disagree\"", "\"2.0.0\""));
    init_fails_ = build_module(
        d, "init_fails",
        c_module("SY_MODULE_STAMP(\"init_fails\", \"1.0.0\");", "\"init_fails\"", "\"1.0.0\"", "",
                 "snprintf(err->message, sizeof err->message, \"cannot open /nonexistent/db\");"
                 " return false;"));
    null_desc_ = build_module(
        d, "null_desc",
        c_module("SY_MODULE_STAMP(\"null_desc\", \"1.0.0\");", "\"null_desc\"", "\"1.0.0\"",
                 "SY_MODULE_ENTRY(host, module) { (void)host; (void)module; return NULL; }",
                 "return true;", false));
    unique_ = build_module(d, "unique", R"(
#include <switchyard/module.h>
SY_MODULE_STAMP("unique", "1.0.0");
inline int& counter() { static int c = 0; return c; }
static const sy_module_descriptor_t d = {sizeof(sy_module_descriptor_t), SY_ABI_MAJOR,
    SY_ABI_MINOR, "unique", "1.0.0", nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
SY_MODULE_ENTRY(host, module) { ++counter(); return &d; }
)",
                           /*cpp=*/true);
    // A truncated copy (section headers are at the end of the file) and a text file.
    std::string bytes = read_text(good_);
    truncated_ = d + "/libsy_truncated.so";
    write_text(truncated_, bytes.substr(0, bytes.size() / 2));
    tiny_ = d + "/libsy_tiny.so";
    write_text(tiny_, bytes.substr(0, 40));
    text_ = d + "/libsy_text.so";
    write_text(text_, "this is not a shared object\n");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    marker_ =
        dir_->path + "/marker-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    setenv("SY_TEST_CTOR_FILE", (marker_ + ".ctor").c_str(), 1);
    setenv("SY_TEST_UNLOAD_FILE", (marker_ + ".unload").c_str(), 1);
    state_ =
        dir_->path + "/state-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  void TearDown() override {
    unsetenv("SY_TEST_CTOR_FILE");
    unsetenv("SY_TEST_UNLOAD_FILE");
  }

  // Loads FILE as module NAME in a fresh registry; returns the error ("" on success).
  std::string load_error(const std::string& name, const std::string& file,
                         const std::string& pin = "") {
    Registry reg(filters::host_table(), state_);
    std::string error;
    auto gen = reg.load({name, file, pin, false}, &error);
    EXPECT_EQ(gen == nullptr, !error.empty());
    return error;
  }
  bool module_code_ran() const { return std::filesystem::exists(marker_ + ".ctor"); }

  static testfix::TempDir* dir_;
  static std::string good_, wrong_major_, newer_minor_, no_stamp_, no_entry_, disagree_,
      init_fails_, null_desc_, unique_, truncated_, tiny_, text_;
  std::string marker_, state_;
};

testfix::TempDir* LoaderTest::dir_ = nullptr;
std::string LoaderTest::good_, LoaderTest::wrong_major_, LoaderTest::newer_minor_,
    LoaderTest::no_stamp_, LoaderTest::no_entry_, LoaderTest::disagree_, LoaderTest::init_fails_,
    LoaderTest::null_desc_, LoaderTest::unique_, LoaderTest::truncated_, LoaderTest::tiny_,
    LoaderTest::text_;

// ---- the stamp, read from the file ------------------------------------------------------

TEST_F(LoaderTest, ReadsTheStampOfAGoodModule) {
  Stamp s;
  std::string error;
  ASSERT_TRUE(read_stamp(good_, &s, &error)) << error;
  EXPECT_EQ(s.name, "good");
  EXPECT_EQ(s.version, "1.0.0");
  EXPECT_EQ(s.abi_major, SY_ABI_MAJOR);
  EXPECT_EQ(s.abi_minor, SY_ABI_MINOR);
  EXPECT_EQ(s.size, sizeof(sy_stamp_t));
  EXPECT_EQ(check_abi(good_, s), "");
  EXPECT_FALSE(module_code_ran());
}

TEST_F(LoaderTest, WrongMajorNamesFileFoundExpectedAndFix) {
  Stamp s;
  std::string error;
  ASSERT_TRUE(read_stamp(wrong_major_, &s, &error)) << error;
  EXPECT_EQ(s.abi_major, 2);
  EXPECT_EQ(check_abi(wrong_major_, s),
            wrong_major_ + " was built for ABI 2.0; this host provides " + host_abi() +
                " (majors must match): rebuild it against the 1.x headers");
  EXPECT_EQ(load_error("wrong_major", wrong_major_), check_abi(wrong_major_, s));
  EXPECT_FALSE(module_code_ran()) << "an incompatible module must not run its constructors";
}

TEST_F(LoaderTest, NewerMinorIsRefusedWithTheUpgradeHint) {
  Stamp s;
  std::string error;
  ASSERT_TRUE(read_stamp(newer_minor_, &s, &error)) << error;
  const std::string needs = "1." + std::to_string(SY_ABI_MINOR + 1);
  EXPECT_EQ(check_abi(newer_minor_, s),
            newer_minor_ + " needs ABI " + needs + "; this host provides " + host_abi() +
                ": rebuild it against the " + host_abi() + " headers or upgrade the proxy");
  EXPECT_CONTAINS(load_error("newer_minor", newer_minor_), "needs ABI " + needs);
  EXPECT_FALSE(module_code_ran());
}

TEST_F(LoaderTest, OlderOrEqualMinorIsAccepted) {
  Stamp s;
  s.abi_major = SY_ABI_MAJOR;
  s.abi_minor = 0;
  EXPECT_EQ(check_abi("x.so", s), "");
  s.abi_minor = SY_ABI_MINOR;
  EXPECT_EQ(check_abi("x.so", s), "");
}

TEST_F(LoaderTest, NoStampSection) {
  Stamp s;
  std::string error;
  EXPECT_FALSE(read_stamp(no_stamp_, &s, &error));
  EXPECT_CONTAINS(error, no_stamp_ + " has no ABI stamp (no .switchyard_stamp section)");
  EXPECT_CONTAINS(error, "add SY_MODULE_STAMP");
  EXPECT_EQ(load_error("no_stamp", no_stamp_), error);
  EXPECT_FALSE(module_code_ran());
}

TEST_F(LoaderTest, TruncatedFile) {
  Stamp s;
  std::string error;
  EXPECT_FALSE(read_stamp(truncated_, &s, &error));
  EXPECT_CONTAINS(error, truncated_ + " is truncated or corrupt");
  EXPECT_CONTAINS(error,
                  "but the file has " + std::to_string(read_text(truncated_).size()) + " bytes");
  EXPECT_CONTAINS(error, "copy the module again or rebuild it");
  EXPECT_FALSE(read_stamp(tiny_, &s, &error));
  EXPECT_CONTAINS(error, tiny_ + " is truncated or corrupt");
}

TEST_F(LoaderTest, NotAnElfFile) {
  Stamp s;
  std::string error;
  EXPECT_FALSE(read_stamp(text_, &s, &error));
  EXPECT_EQ(error, text_ +
                       " is not an ELF file (it does not start with \\x7fELF): give the path "
                       "of the module's .so");
  EXPECT_FALSE(read_stamp(dir_->path + "/absent.so", &s, &error));
  EXPECT_CONTAINS(error, "cannot read " + dir_->path + "/absent.so: No such file");
}

TEST_F(LoaderTest, Sha256OfAFile) {
  std::string path = dir_->path + "/abc.txt", error;
  write_text(path, "abc");
  EXPECT_EQ(sha256_file(path, &error),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_file(dir_->path + "/absent", &error), "");
  EXPECT_CONTAINS(error, "absent");
}

TEST_F(LoaderTest, FindsModulesOnThePath) {
  EXPECT_EQ(find_on_path({"/nonexistent", dir_->path}, "good"), dir_->path + "/libsy_good.so");
  EXPECT_EQ(find_on_path({dir_->path}, "absent"), "");
  EXPECT_EQ(find_on_path({dir_->path}, "../good"), "");
}

// ---- loading ----------------------------------------------------------------------------

TEST_F(LoaderTest, MissingEntrySymbol) {
  EXPECT_EQ(load_error("no_entry", no_entry_), "missing entry symbol sy_module_entry_v1 in " +
                                                   no_entry_ + ": declare it with SY_MODULE_ENTRY");
  EXPECT_FALSE(module_code_ran());
}

TEST_F(LoaderTest, StampAndDescriptorDisagree) {
  EXPECT_CONTAINS(load_error("disagree", disagree_),
                  "stamp and descriptor disagree in " + disagree_ +
                      ": stamp says name=disagree version=1.0.0 ABI " + host_abi() +
                      ", descriptor says name=disagree version=2.0.0 ABI " + host_abi() + ": ");
}

TEST_F(LoaderTest, OnLoadFailureCarriesTheModulesMessage) {
  uint64_t before = counter_value("init_fails", "load_failures");
  EXPECT_EQ(load_error("init_fails", init_fails_),
            "module init_fails (" + init_fails_ +
                ") refused to load: on_load failed: cannot open /nonexistent/db");
  EXPECT_EQ(counter_value("init_fails", "load_failures"), before + 1);
  EXPECT_FALSE(std::filesystem::exists(marker_ + ".unload")) << "on_unload is owed only after "
                                                                "a successful on_load";
}

TEST_F(LoaderTest, PreflightFindsACrashInAChildProcess) {
  // Loaded in this process, the entry would kill the test binary: the preflight runs it in a
  // child first and the load is refused with how the child died and where.
  std::string crash = build_module(
      dir_->path, "crash_entry",
      c_module("SY_MODULE_STAMP(\"crash_entry\", \"1.0.0\");", "\"crash_entry\"", "\"1.0.0\"",
               "SY_MODULE_ENTRY(host, module) { (void)host; (void)module;"
               " *(volatile int*)0 = 1; return &descriptor; }",
               "return true;", false));
  uint64_t before = counter_value("crash_entry", "load_failures");
  std::string error = load_error("crash_entry", crash);
  EXPECT_CONTAINS(error, crash + ": the module crashed while loading (signal 11");
  EXPECT_CONTAINS(error, ") in its entry function: it was tried in a child process");
  EXPECT_EQ(counter_value("crash_entry", "load_failures"), before + 1);
}

TEST_F(LoaderTest, PreflightRunsTheModuleOnceMoreInAChildUnlessTurnedOff) {
  auto ctor_runs = [&] {
    std::string text = read_text(marker_ + ".ctor");
    return std::count(text.begin(), text.end(), '\n');
  };
  {
    Registry reg(filters::host_table(), state_);
    std::string error;
    ASSERT_NE(reg.load({"good", good_, "", false}, &error), nullptr) << error;
  }
  EXPECT_EQ(ctor_runs(), 2) << "once in the preflight's child, once here";
  {
    Registry reg(filters::host_table(), state_);
    reg.set_preflight(false);
    std::string error;
    ASSERT_NE(reg.load({"good", good_, "", false}, &error), nullptr) << error;
  }
  EXPECT_EQ(ctor_runs(), 3) << "no preflight: only here";
}

TEST_F(LoaderTest, NullDescriptor) {
  EXPECT_CONTAINS(load_error("null_desc", null_desc_),
                  "the entry function of " + null_desc_ + " returned no descriptor (NULL)");
}

TEST_F(LoaderTest, Sha256Pin) {
  std::string error;
  std::string sha = sha256_file(good_, &error);
  std::string wrong(64, 'a');
  EXPECT_EQ(load_error("good", good_, wrong),
            "sha256 mismatch for " + good_ + ": found " + sha + ", expected " + wrong +
                " (the pin in the config): deploy the file the pin names, or update the pin to " +
                sha + " if this file is the one you mean");
  std::string upper = sha;
  for (char& c : upper) c = char(toupper(c));
  EXPECT_EQ(load_error("good", good_, upper), "");
}

TEST_F(LoaderTest, ModuleNameMustMatchItsStamp) {
  EXPECT_CONTAINS(load_error("other", good_),
                  good_ +
                      " is module 'good' (its stamp says so), but the config loads it "
                      "as 'other'");
}

TEST_F(LoaderTest, GenerationsArePrivateCopies) {
  Registry reg(filters::host_table(), state_);
  std::string error;
  uint64_t loads = counter_value("good", "loads");
  auto g1 = reg.load({"good", good_, "", false}, &error);
  ASSERT_TRUE(g1) << error;
  auto g2 = reg.load({"good", good_, "", false}, &error);
  ASSERT_TRUE(g2) << error;
  EXPECT_EQ(counter_value("good", "loads"), loads + 2);

  EXPECT_EQ(g1->number(), 1u);
  EXPECT_EQ(g2->number(), 2u);
  EXPECT_EQ(g1->name(), "good");
  EXPECT_EQ(g1->scope()->generation, 1u);
  EXPECT_NE(g1->scope()->callback_exceptions, nullptr);
  EXPECT_NE(g1->scope()->posts_dropped, nullptr);
  EXPECT_EQ(g1->sha256(), g2->sha256());
  EXPECT_NE(g1->copy_path(), g2->copy_path());
  std::string canon_state = std::filesystem::canonical(state_).string();
  EXPECT_EQ(g1->copy_path(), canon_state + "/" + g1->sha256() + "-libsy_good.so");
  EXPECT_EQ(g2->copy_path(), g1->copy_path() + "-g2");
  EXPECT_TRUE(is_mapped(g1->copy_path()));
  EXPECT_TRUE(is_mapped(g2->copy_path()));
  EXPECT_FALSE(is_mapped(good_)) << "the original file is never loaded";
  // Separate mappings: each generation has its own static state.
  EXPECT_NE(g1->module_data(), g2->module_data());

  EXPECT_EQ(g1->http_filter("")->name, std::string("add_header"));
  EXPECT_EQ(g1->http_filter("second")->name, std::string("second"));
  EXPECT_EQ(g1->http_filter("nope"), nullptr);
  EXPECT_EQ(g1->network_filter("tap")->name, std::string("tap"));
  EXPECT_EQ(g1->stamp().version, "1.0.0");
  EXPECT_FALSE(g1->loaded_at().empty());
}

TEST_F(LoaderTest, DroppingTheLastReferenceUnloadsAndUnmaps) {
  Registry reg(filters::host_table(), state_);
  std::string error;
  auto gen = reg.load({"good", good_, "", false}, &error);
  ASSERT_TRUE(gen) << error;
  std::string copy = gen->copy_path();
  ASSERT_TRUE(is_mapped(copy));
  ASSERT_TRUE(std::filesystem::exists(copy));
  uint64_t failures = counter_value("good", "unload_failures");
  gen.reset();
  EXPECT_EQ(read_text(marker_ + ".unload"), "unload \n");
  EXPECT_FALSE(is_mapped(copy));
  EXPECT_FALSE(std::filesystem::exists(copy));
  EXPECT_EQ(counter_value("good", "unload_failures"), failures);
}

TEST_F(LoaderTest, ReplacingTheOriginalFileDoesNotTouchALoadedCopy) {
  std::string file = dir_->path + "/replace/libsy_good.so";
  std::filesystem::create_directories(dir_->path + "/replace");
  std::filesystem::copy_file(good_, file);
  Registry reg(filters::host_table(), state_);
  std::string error;
  auto gen = reg.load({"good", file, "", false}, &error);
  ASSERT_TRUE(gen) << error;
  write_text(file, "garbage");
  EXPECT_EQ(read_text(gen->copy_path()), read_text(good_));
  EXPECT_EQ(reg.load({"good", file, "", false}, &error), nullptr);
  EXPECT_CONTAINS(error, "is not an ELF file");
}

TEST_F(LoaderTest, PublishHandOverRollbackAndRetire) {
  Registry reg(filters::host_table(), state_);
  std::string error;
  uint64_t swaps = counter_value("good", "swaps");
  auto g1 = reg.load({"good", good_, "", false}, &error);
  ASSERT_TRUE(g1) << error;
  reg.publish(g1);
  EXPECT_EQ(reg.current("good"), g1);
  EXPECT_EQ(reg.previous("good"), nullptr);
  ASSERT_NE(reg.spec("good"), nullptr);
  EXPECT_EQ(reg.spec("good")->path, good_);

  // The new generation receives the current one's hand-over blob.
  auto g2 = reg.load({"good", good_, "", false}, &error);
  ASSERT_TRUE(g2) << error;
  EXPECT_STREQ(static_cast<char*>(g2->module_data()), "handover-blob");
  EXPECT_STREQ(static_cast<char*>(g1->module_data()), "");
  reg.publish(g2);
  EXPECT_EQ(reg.current("good"), g2);
  EXPECT_EQ(reg.previous("good"), g1);
  EXPECT_EQ(counter_value("good", "swaps"), swaps + 1);
  EXPECT_EQ(filters::module_host_gauge("good", "generation")->value(), 2);

  // Rollback: the previous generation becomes current again.
  reg.publish(g1);
  EXPECT_EQ(reg.current("good"), g1);
  EXPECT_EQ(reg.previous("good"), g2);
  reg.publish(g2);

  // A third generation retires the first: held weakly, unloaded when its last user goes.
  std::string g1_copy = g1->copy_path();
  auto g3 = reg.load({"good", good_, "", false}, &error);
  ASSERT_TRUE(g3) << error;
  reg.publish(g3);
  EXPECT_EQ(reg.previous("good"), g2);
  ASSERT_EQ(reg.retired_still_loaded(), std::vector<std::string>{g1_copy});
  g1->scope()->streams_active = 3;  // as if three streams still ran on it
  std::string json = reg.list_json();
  EXPECT_CONTAINS(json, "{\"generation\":1,\"sha256\":\"" + g1->sha256() +
                            "\",\"streams_active\":3,\"loaded\":true}");
  g1->scope()->streams_active = 0;
  g1.reset();
  EXPECT_TRUE(reg.retired_still_loaded().empty());
  EXPECT_FALSE(is_mapped(g1_copy));
  EXPECT_CONTAINS(read_text(marker_ + ".unload"), "unload");

  json = reg.list_json();
  EXPECT_EQ(json.front(), '[');
  EXPECT_EQ(json.back(), ']');
  EXPECT_CONTAINS(json, "\"name\":\"good\",\"path\":\"" + good_ + "\",\"sha256\":\"" +
                            g3->sha256() + "\",\"module_version\":\"1.0.0\",\"abi\":\"" +
                            host_abi() + "\",\"generation\":3,");
  EXPECT_CONTAINS(json, "\"previous\":[{\"generation\":2,");
  EXPECT_CONTAINS(json, "{\"generation\":1,\"sha256\":\"" + g3->sha256() +
                            "\",\"streams_active\":0,\"loaded\":false}");
  reg.set_last_error("good", "bad \"quote\"\n");
  EXPECT_CONTAINS(reg.list_json(), "\"last_error\":\"bad \\\"quote\\\"\\n\"");
}

TEST_F(LoaderTest, GnuUniqueModuleIsWarnedAboutAndItsStuckMappingCounted) {
  EXPECT_TRUE(has_gnu_unique(unique_));
  EXPECT_FALSE(has_gnu_unique(good_));
  Registry reg(filters::host_table(), state_);
  std::string error;
  uint64_t failures = counter_value("unique", "unload_failures");
  ::testing::internal::CaptureStderr();
  auto gen = reg.load({"unique", unique_, "", false}, &error);
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(gen) << error;
  EXPECT_CONTAINS(log, unique_ +
                           " defines STB_GNU_UNIQUE symbols (counter()::c); glibc will "
                           "keep it mapped after a swap: build with -fno-gnu-unique");
  std::string copy = gen->copy_path();
  gen.reset();
  // glibc keeps it: the loader notices, says so and counts it, and a new load of the same
  // content still gets a mapping of its own.
  EXPECT_TRUE(is_mapped(copy));
  EXPECT_EQ(counter_value("unique", "unload_failures"), failures + 1);
  auto stuck = reg.retired_still_loaded();
  EXPECT_NE(std::find(stuck.begin(), stuck.end(), copy), stuck.end());
  auto again = reg.load({"unique", unique_, "", false}, &error);
  ASSERT_TRUE(again) << error;
  EXPECT_NE(again->copy_path(), copy);
}

}  // namespace
}  // namespace sy::loader
