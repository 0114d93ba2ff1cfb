// Config scalars: durations, sizes and addresses, and the YAML -> JSON conversion of filter
// configs.
#include <gtest/gtest.h>

#include <string>

#include "config/config.h"
#include "config/units.h"

namespace sy::config {
namespace {

using namespace std::chrono_literals;

// ---- Durations -------------------------------------------------------------------------------

Duration duration(std::string_view s) {
  Duration d{-1};
  std::string err;
  EXPECT_TRUE(parse_duration(s, &d, &err)) << s << ": " << err;
  return d;
}

std::string duration_error(std::string_view s) {
  Duration d{-7};
  std::string err;
  EXPECT_FALSE(parse_duration(s, &d, &err)) << s;
  EXPECT_EQ(d, Duration(-7)) << "output written on failure for " << s;
  return err;
}

TEST(ConfigDuration, Units) {
  EXPECT_EQ(duration("1s"), 1s);
  EXPECT_EQ(duration("500ms"), 500ms);
  EXPECT_EQ(duration("2m"), 2min);
  EXPECT_EQ(duration("1h"), 1h);
  EXPECT_EQ(duration("0s"), 0ms);
  EXPECT_EQ(duration("15000ms"), 15s);
  EXPECT_EQ(duration("1m30s"), 90s);
  EXPECT_EQ(duration("1h1m1s1ms"), 3661001ms);
}

TEST(ConfigDuration, FractionsAndRoundingUp) {
  EXPECT_EQ(duration("1.5s"), 1500ms);
  EXPECT_EQ(duration(".25s"), 250ms);
  EXPECT_EQ(duration("0.5h"), 30min);
  EXPECT_EQ(duration("250us"), 1ms);  // never rounds a timeout down to zero
  EXPECT_EQ(duration("1000us"), 1ms);
  EXPECT_EQ(duration("1001us"), 2ms);
  EXPECT_EQ(duration("1ns"), 1ms);
  EXPECT_EQ(duration("2.0001ms"), 3ms);
  EXPECT_EQ(duration("1.0000000001s"), 1001ms);  // digits past nanoseconds still round up
  EXPECT_EQ(duration("0.000000000s"), 0ms);
}

TEST(ConfigDuration, Rejections) {
  EXPECT_EQ(duration_error("30"),
            "expected a duration like 1s or 250ms (a number needs a unit: h, m, s, ms or us)");
  EXPECT_EQ(duration_error(""), "expected a duration like 1s or 250ms");
  EXPECT_EQ(duration_error("s"), "expected a duration like 1s or 250ms");
  EXPECT_EQ(duration_error("-1s"), "a duration must not be negative");
  EXPECT_EQ(duration_error("1d"),
            "expected a duration like 1s or 250ms (unknown unit 'd'; expected h, m, s, ms or us)");
  EXPECT_EQ(duration_error("1 s"),
            "expected a duration like 1s or 250ms (unknown unit ' s'; expected h, m, s, ms or us)");
  EXPECT_EQ(duration_error("1.s"), "expected a duration like 1s or 250ms");
  EXPECT_EQ(duration_error("1s5"),
            "expected a duration like 1s or 250ms (a number needs a unit: h, m, s, ms or us)");
  EXPECT_EQ(duration_error("99999999999999999999h"), "duration is too large");
  EXPECT_EQ(duration_error("9999999999h"), "duration is too large");
}

// ---- Sizes -----------------------------------------------------------------------------------

uint64_t size(std::string_view s) {
  uint64_t v = 12345;
  std::string err;
  EXPECT_TRUE(parse_size(s, &v, &err)) << s << ": " << err;
  return v;
}

std::string size_error(std::string_view s) {
  uint64_t v = 12345;
  std::string err;
  EXPECT_FALSE(parse_size(s, &v, &err)) << s;
  EXPECT_EQ(v, 12345u);
  return err;
}

TEST(ConfigSize, BinaryMultiples) {
  EXPECT_EQ(size("0"), 0u);
  EXPECT_EQ(size("65536"), 65536u);
  EXPECT_EQ(size("64K"), 65536u);
  EXPECT_EQ(size("64KiB"), 65536u);
  EXPECT_EQ(size("1M"), 1048576u);
  EXPECT_EQ(size("1MiB"), 1048576u);
  EXPECT_EQ(size("2G"), 2147483648u);
  EXPECT_EQ(size("2GiB"), 2147483648u);
  EXPECT_EQ(size("18446744073709551615"), UINT64_MAX);
}

TEST(ConfigSize, Rejections) {
  const std::string hint = "expected a size like 65536, 64KiB or 1MiB";
  EXPECT_EQ(size_error("100KB"),
            hint + " ('KB' is ambiguous; write KiB, MiB or GiB for binary multiples)");
  EXPECT_EQ(size_error("1MB"),
            hint + " ('MB' is ambiguous; write KiB, MiB or GiB for binary multiples)");
  EXPECT_EQ(size_error("1kb"), hint + " (unknown unit 'kb'; expected K, KiB, M, MiB, G or GiB)");
  EXPECT_EQ(size_error("1T"), hint + " (unknown unit 'T'; expected K, KiB, M, MiB, G or GiB)");
  EXPECT_EQ(size_error("1.5M"), hint + " (unknown unit '.5M'; expected K, KiB, M, MiB, G or GiB)");
  EXPECT_EQ(size_error("K"), hint);
  EXPECT_EQ(size_error(""), hint);
  EXPECT_EQ(size_error("-5"), "a size must not be negative");
  EXPECT_EQ(size_error("18446744073709551616"), "size is too large");
  EXPECT_EQ(size_error("17179869184G"), "size is too large");
}

// ---- Addresses -------------------------------------------------------------------------------

TEST(ConfigAddress, Accepted) {
  Address a;
  std::string err;
  ASSERT_TRUE(parse_address("10.0.0.1:80", false, &a, &err)) << err;
  EXPECT_EQ(a.host, "10.0.0.1");
  EXPECT_EQ(a.port, 80);
  ASSERT_TRUE(parse_address("[::1]:65535", false, &a, &err)) << err;
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 65535);
  ASSERT_TRUE(parse_address("[2001:db8::7]:443", false, &a, &err)) << err;
  EXPECT_EQ(a.host, "2001:db8::7");
  ASSERT_TRUE(parse_address("localhost:9901", false, &a, &err)) << err;
  EXPECT_EQ(a.host, "127.0.0.1");
  ASSERT_TRUE(parse_address("0.0.0.0:0", true, &a, &err)) << err;
  EXPECT_EQ(a.port, 0);
  ASSERT_TRUE(parse_address("[::]:0", true, &a, &err)) << err;
  EXPECT_EQ(a.host, "::");
}

TEST(ConfigAddress, Rejected) {
  const std::string hint = "expected an address like 127.0.0.1:8080 or [::1]:8080";
  for (auto [text, why] : std::vector<std::pair<std::string, std::string>>{
           {"10.0.0.1", "missing port"},
           {"10.0.0.1:", "port must be a number from 0 to 65535"},
           {"10.0.0.1:65536", "port must be a number from 0 to 65535"},
           {"10.0.0.1:123456", "port must be a number from 0 to 65535"},
           {"10.0.0.1:-1", "port must be a number from 0 to 65535"},
           {"10.0.0.1:http", "port must be a number from 0 to 65535"},
           {"10.0.0.1:0", "port 0 is only allowed for listeners"},
           {"10.0.0.256:80", "host must be a numeric IP address or localhost, not '10.0.0.256'"},
           {"host.example:80",
            "host must be a numeric IP address or localhost, not 'host.example'"},
           {"::1:80", "IPv6 addresses need brackets"},
           {"[::1]", "missing port"},
           {"[::1:80", "missing ']'"},
           {"[10.0.0.1]:80", "'10.0.0.1' is not an IPv6 address"},
           {"[fe80::1%eth0]:80", "'fe80::1%eth0' is not an IPv6 address"},
           {":80", "missing host; use 0.0.0.0 for every interface"},
       }) {
    Address a{"untouched", 1};
    std::string err;
    EXPECT_FALSE(parse_address(text, false, &a, &err)) << text;
    EXPECT_EQ(err, hint + " (" + why + ")") << text;
    EXPECT_EQ(a.host, "untouched");
  }
}

TEST(ConfigUint, Parse) {
  uint64_t v = 0;
  std::string err;
  EXPECT_TRUE(parse_uint("18446744073709551615", &v, &err));
  EXPECT_EQ(v, UINT64_MAX);
  EXPECT_FALSE(parse_uint("18446744073709551616", &v, &err));
  EXPECT_EQ(err, "integer is too large");
  EXPECT_FALSE(parse_uint("+1", &v, &err));
  EXPECT_EQ(err, "expected a non-negative integer");
  EXPECT_FALSE(parse_uint("1.0", &v, &err));
  EXPECT_FALSE(parse_uint("", &v, &err));
}

// ---- Filter config as JSON -------------------------------------------------------------------

// The JSON of a filter config written as YAML (indented under `config:`).
std::string json_of(std::string_view config_yaml) {
  std::string text =
      "listeners:\n"
      "  - name: l\n"
      "    address: 127.0.0.1:0\n"
      "    filters:\n"
      "      - module: m\n"
      "        config: " +
      std::string(config_yaml) + "\n";
  LoadResult r = load_string(text, "t.yaml");
  std::string errors;
  for (const Error& e : r.errors) errors += e.str() + "\n";
  EXPECT_TRUE(r.errors.empty()) << errors;
  return r.config ? r.config->listeners[0].filters[0].config_json : "";
}

std::vector<std::string> json_errors(std::string_view config_yaml) {
  std::string text =
      "listeners:\n"
      "  - name: l\n"
      "    address: 127.0.0.1:0\n"
      "    filters:\n"
      "      - module: m\n"
      "        config: " +
      std::string(config_yaml) + "\n";
  LoadResult r = load_string(text, "t.yaml");
  EXPECT_EQ(r.config, nullptr);
  std::vector<std::string> out;
  for (const Error& e : r.errors) out.push_back(e.str());
  return out;
}

TEST(ConfigJson, NestedStructure) {
  EXPECT_EQ(json_of("{a: {b: [1, {c: [[], {}]}]}, d: []}"),
            R"({"a":{"b":[1,{"c":[[],{}]}]},"d":[]})");
  EXPECT_EQ(json_of("\n          - x\n          - y: z\n"), R"(["x",{"y":"z"}])");
}

TEST(ConfigJson, KeyOrderIsKept) {
  EXPECT_EQ(json_of("{z: 1, a: 2, m: 3}"), R"({"z":1,"a":2,"m":3})");
}

TEST(ConfigJson, QuotedScalarsStayStrings) {
  EXPECT_EQ(json_of(R"({a: "1", b: '2.5', c: "true", d: "null", e: "~", f: ''})"),
            R"({"a":"1","b":"2.5","c":"true","d":"null","e":"~","f":""})");
  EXPECT_EQ(json_of("{a: !!str 42}"), R"({"a":"42"})");
}

TEST(ConfigJson, PlainScalarsAreTypedByTheCoreSchema) {
  EXPECT_EQ(json_of("[1, -2, +3, 007, 0, -0]"), "[1,-2,3,7,0,-0]");
  EXPECT_EQ(json_of("[0x1F, 0o17, 0xffffffffffffffff]"), "[31,15,18446744073709551615]");
  EXPECT_EQ(json_of("[1.5, -.5, 1., +01.50, 6.02e23, 1E-3, 2e+2]"),
            "[1.5,-0.5,1.0,1.50,6.02e23,1e-3,2e+2]");
  EXPECT_EQ(json_of("[true, True, TRUE, false, False, FALSE]"),
            "[true,true,true,false,false,false]");
  EXPECT_EQ(json_of("[~, null, Null, NULL, ]"), "[null,null,null,null]");
  EXPECT_EQ(json_of("{a: }"), R"({"a":null})");
  // YAML 1.1 spellings are strings under 1.2, and so are near-numbers.
  EXPECT_EQ(json_of("[yes, no, on, off, y, n]"), R"(["yes","no","on","off","y","n"])");
  EXPECT_EQ(json_of("[1_000, 0x, 0xZ, 1e, 1.2.3, 12ab, -, .]"),
            R"(["1_000","0x","0xZ","1e","1.2.3","12ab","-","."])");
  // Big decimal integers are passed through exactly; JSON has no size limit.
  EXPECT_EQ(json_of("123456789012345678901234567890"), "123456789012345678901234567890");
}

TEST(ConfigJson, KeysAreAlwaysStrings) {
  EXPECT_EQ(json_of("{1: a, true: b, 1.5: c}"), R"({"1":"a","true":"b","1.5":"c"})");
}

TEST(ConfigJson, StringsAreEscaped) {
  EXPECT_EQ(json_of(R"({s: "quote \" backslash \\ slash /"})"),
            R"({"s":"quote \" backslash \\ slash /"})");
  EXPECT_EQ(json_of(R"({s: "\t\n\r\b\f"})"), R"({"s":"\t\n\r\b\f"})");
  // DEL is escaped too: the JSON writer is the one the access log uses, where a raw DEL
  // would reach a terminal.
  EXPECT_EQ(json_of(R"({s: "\x01\x1f\x7f\0"})"), R"({"s":"\u0001\u001f\u007f\u0000"})");
}

TEST(ConfigJson, Utf8PassesThrough) {
  EXPECT_EQ(json_of("{s: \"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x9A\x82\"}"),
            "{\"s\":\"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x9A\x82\"}");
  EXPECT_EQ(json_of(R"({s: "\u00e9\U0001F682"})"), "{\"s\":\"\xC3\xA9\xF0\x9F\x9A\x82\"}");
}

TEST(ConfigJson, BlockScalarsAreStrings) {
  EXPECT_EQ(json_of("|\n          line 1\n          42\n"), R"("line 1\n42\n")");
  EXPECT_EQ(json_of(">-\n          folded\n          text\n"), R"("folded text")");
}

TEST(ConfigJson, WhatJsonCannotSayIsAnError) {
  EXPECT_EQ(json_errors("{x: .inf}"),
            (std::vector<std::string>{
                "t.yaml:6:21: config in filter: JSON has no infinity or NaN; quote '.inf' to pass "
                "it as a string"}));
  EXPECT_EQ(json_errors("[-.Inf]"),
            (std::vector<std::string>{"t.yaml:6:18: config in filter: JSON has no infinity or "
                                      "NaN; quote '-.Inf' to pass it as a string"}));
  EXPECT_EQ(json_errors("[.nan]"),
            (std::vector<std::string>{"t.yaml:6:18: config in filter: JSON has no infinity or "
                                      "NaN; quote '.nan' to pass it as a string"}));
  EXPECT_EQ(json_errors("{[a]: 1}"),
            (std::vector<std::string>{
                "t.yaml:6:18: config in filter: JSON object keys must be strings, got a list"}));
  EXPECT_EQ(json_errors("{a: 1, b: 2, a: 3}"),
            (std::vector<std::string>{"t.yaml:6:30: config in filter: duplicate key 'a'"}));
  EXPECT_EQ(json_errors("[0x10000000000000000]"),
            (std::vector<std::string>{
                "t.yaml:6:18: config in filter: integer '0x10000000000000000' does not fit in 64 "
                "bits"}));
}

TEST(ConfigJson, RecursiveAliasIsRefused) {
  std::vector<std::string> errors = json_errors("&loop [*loop]");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("nested more than 128 levels deep"), std::string::npos) << errors[0];
}

TEST(ConfigJson, AliasBombIsRefused) {
  // Each level doubles the expansion: 2^30 leaves from a few hundred bytes of YAML.
  std::string yaml =
      "\n          a0: &a0 [xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx]";
  for (int i = 1; i <= 30; ++i)
    yaml += "\n          a" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" +
            std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + "]";
  std::vector<std::string> errors = json_errors(yaml);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("expands to more than 16 MiB of JSON"), std::string::npos) << errors[0];
}

TEST(ConfigJson, AliasesExpand) {
  EXPECT_EQ(json_of("{a: &x {k: v}, b: *x}"), R"({"a":{"k":"v"},"b":{"k":"v"}})");
}

}  // namespace
}  // namespace sy::config
