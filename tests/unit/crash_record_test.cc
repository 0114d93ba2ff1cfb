// The crash record: what the signal handler writes parses back to the same facts; what is not
// a record is refused with the reason; and the state directory finds the previous good
// generation past the crashed ones.
#include "loader/crash_record.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "loader/module_state.h"

namespace sy::loader {
namespace {

const std::string kShaA(64, 'a');
const std::string kShaB(64, 'b');
const std::string kShaC(64, 'c');

std::string formatted(const CrashFacts& facts, size_t cap = 2048) {
  std::string buf(cap, '\0');
  size_t n = format_crash_record(buf.data(), buf.size(), facts);
  buf.resize(n);
  return buf;
}

TEST(CrashRecord, WhatTheHandlerWritesParsesBack) {
  CrashFacts facts{"fx_segfault",
                   kShaA.c_str(),
                   7,
                   "on_request_headers",
                   SIGSEGV,
                   951782400 /* 2000-02-29T00:00:00Z */,
                   4242};
  std::string text = formatted(facts);
  EXPECT_EQ(text,
            "switchyard crash record 1\nmodule=fx_segfault\nsha256=" + kShaA +
                "\ngeneration=7\ncallback=on_request_headers\nsignal=11\nsignal_name=SIGSEGV\n"
                "time=2000-02-29T00:00:00Z\npid=4242\n");
  CrashRecord r;
  std::string error;
  ASSERT_TRUE(parse_crash_record(text, &r, &error)) << error;
  EXPECT_EQ(r.module, "fx_segfault");
  EXPECT_EQ(r.sha256, kShaA);
  EXPECT_EQ(r.generation, 7u);
  EXPECT_EQ(r.callback, "on_request_headers");
  EXPECT_EQ(r.signal, SIGSEGV);
  EXPECT_EQ(r.signal_name, "SIGSEGV");
  EXPECT_EQ(r.time, "2000-02-29T00:00:00Z");
  EXPECT_EQ(r.pid, 4242);
}

TEST(CrashRecord, ControlCharactersInANameCannotBreakTheLines) {
  CrashFacts facts{"evil\nsignal=1", kShaA.c_str(), 1, "on_load", SIGABRT, 0, 1};
  CrashRecord r;
  std::string error;
  ASSERT_TRUE(parse_crash_record(formatted(facts), &r, &error)) << error;
  EXPECT_EQ(r.module, "evil?signal=1");
  EXPECT_EQ(r.signal, SIGABRT);
  EXPECT_EQ(r.time, "1970-01-01T00:00:00Z");
}

TEST(CrashRecord, ABufferTooSmallGivesNothingRatherThanHalfARecord) {
  CrashFacts facts{"m", kShaA.c_str(), 1, "on_load", SIGSEGV, 0, 1};
  EXPECT_EQ(formatted(facts, 40), "");
}

TEST(CrashRecord, UtcDatesAcrossLeapYearsAndCenturies) {
  char buf[32];
  format_utc(buf, 0);
  EXPECT_STREQ(buf, "1970-01-01T00:00:00Z");
  format_utc(buf, 4107542399);  // the last second of 2100-02-28 (2100 is not a leap year)
  EXPECT_STREQ(buf, "2100-02-28T23:59:59Z");
  format_utc(buf, 4107542400);
  EXPECT_STREQ(buf, "2100-03-01T00:00:00Z");
  format_utc(buf, 1796602931);
  EXPECT_STREQ(buf, "2026-12-07T00:22:11Z");
}

TEST(CrashRecord, WhatIsNotARecordIsRefusedWithTheReason) {
  const std::string head = "switchyard crash record 1\n";
  const std::string body = "module=m\nsha256=" + kShaA + "\ngeneration=1\ncallback=on_load\n";
  struct Case {
    std::string text, why;
  } cases[] = {
      {"", "not a crash record"},
      {"switchyard crash record 2\n" + body + "signal=11\n", "not a crash record"},
      {head + body, "incomplete crash record"},
      {head + body + "signal=eleven\n", "signal is not a signal number"},
      {head + body + "signal=0\n", "signal is not a signal number"},
      {head + body + "signal=11\nno equals sign\n", "malformed line"},
      {head + "module=m\nsha256=ABC\ngeneration=1\ncallback=x\nsignal=11\n", "sha256 is not"},
      {head + "module=m\nsha256=" + kShaA + "\ngeneration=-1\ncallback=x\nsignal=11\n",
       "generation is not a number"},
  };
  for (const auto& c : cases) {
    CrashRecord r;
    std::string error;
    EXPECT_FALSE(parse_crash_record(c.text, &r, &error)) << c.text;
    EXPECT_NE(error.find(c.why), std::string::npos) << error << "\n  for\n" << c.text;
  }
  // Keys a later version adds are ignored.
  CrashRecord r;
  std::string error;
  EXPECT_TRUE(parse_crash_record(head + body + "signal=7\nthread=3\n", &r, &error)) << error;
  EXPECT_EQ(r.signal, 7);
}

class ModuleStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sy-state-test." + std::to_string(getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // A file standing in for a private copy of a generation.
  std::string copy(const std::string& content) {
    std::filesystem::create_directories(dir_ / "copies");
    std::string p = (dir_ / "copies" / content).string();
    std::ofstream(p) << content;
    return p;
  }
  void crash(const ModuleState& st, const std::string& name, const std::string& sha) {
    CrashFacts facts{name.c_str(), sha.c_str(), 2, "on_request_headers", SIGSEGV, 1000, 1};
    std::ofstream(st.record_path(name, sha)) << formatted(facts);
  }
  std::filesystem::path dir_;
};

TEST_F(ModuleStateTest, PreviousGoodSkipsTheCrashedAndTheNamedOne) {
  ModuleState st(dir_.string());
  std::string sha, path;
  EXPECT_FALSE(st.previous_good("m", kShaA, &sha, &path));  // nothing served yet
  st.remember_good("m", kShaA, copy("a"));
  st.remember_good("m", kShaB, copy("b"));
  st.remember_good("m", kShaC, copy("c"));
  crash(st, "m", kShaC);
  CrashRecord r;
  EXPECT_TRUE(st.crashed("m", kShaC, &r));
  EXPECT_EQ(r.callback, "on_request_headers");
  EXPECT_FALSE(st.crashed("m", kShaB, &r));
  ASSERT_TRUE(st.previous_good("m", kShaC, &sha, &path));
  EXPECT_EQ(sha, kShaB);  // the newest good one that did not crash
  std::ifstream kept(path);
  std::string content;
  kept >> content;
  EXPECT_EQ(content, "b");  // the kept copy of that generation
  ASSERT_TRUE(st.previous_good("m", kShaB, &sha, &path));
  EXPECT_EQ(sha, kShaA);
  // Another module's records are its own.
  EXPECT_FALSE(st.previous_good("other", kShaC, &sha, &path));
  ASSERT_EQ(st.crashes("m").size(), 1u);
  EXPECT_EQ(st.crashes("m")[0].sha256, kShaC);
  EXPECT_TRUE(st.crashes("other").empty());
}

TEST_F(ModuleStateTest, AnUnreadableRecordStillBlocksItsSha) {
  ModuleState st(dir_.string());
  std::ofstream(st.record_path("m", kShaA)) << "garbage";
  CrashRecord r;
  EXPECT_TRUE(st.crashed("m", kShaA, &r));
  EXPECT_EQ(r.sha256, kShaA);
}

TEST_F(ModuleStateTest, ANameIsOnePathComponent) {
  ModuleState st(dir_.string());
  std::string d = st.module_dir("../../etc");
  EXPECT_EQ(std::filesystem::path(d).parent_path(), std::filesystem::path(st.dir()) / "modules");
}

}  // namespace
}  // namespace sy::loader
