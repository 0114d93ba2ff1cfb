// The loader's ABI 1.0 table sizes against the frozen 1.0 header, and the rule they serve:
// tables from the 1.0 layout up are accepted (a module built against any 1.m header), smaller
// ones are refused with the size expected.
#include <gtest/gtest.h>
#include <switchyard/module.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "loader/abi_sizes.h"
#include "loader/loader.h"
#include "tests/unit/loader_fixtures.h"

namespace sy::loader {
namespace {

// Compiles and runs a program against abi/history/1.0 alone; it prints the three sizes.
std::vector<size_t> sizes_in_frozen_1_0(const std::string& dir) {
  std::string src = dir + "/sizes.c", exe = dir + "/sizes", out = dir + "/sizes.out";
  testfix::write_text(src, R"(#include <stdio.h>
#include <switchyard/module.h>
int main(void) {
  printf("%zu %zu %zu\n", sizeof(sy_http_filter_t), sizeof(sy_network_filter_t),
         sizeof(sy_module_descriptor_t));
  return SY_ABI_MINOR;  /* 0: proves the frozen 1.0 header was the one included */
}
)");
  std::string cmd = "cc -std=c11 -I" + testfix::source_root() + "/abi/history/1.0 -o " + exe + " " +
                    src + " && " + exe + " >" + out;
  if (std::system(cmd.c_str()) != 0) {
    ADD_FAILURE() << "could not build or run " << src << " against abi/history/1.0";
    return {};
  }
  std::vector<size_t> v(3);
  std::FILE* f = std::fopen(out.c_str(), "r");
  EXPECT_NE(f, nullptr);
  if (f) {
    EXPECT_EQ(std::fscanf(f, "%zu %zu %zu", &v[0], &v[1], &v[2]), 3);
    std::fclose(f);
  }
  return v;
}

TEST(LoaderAbiSizes, TheFirstReleasedLayoutIsTheFrozen1_0Header) {
  testfix::TempDir dir;
  auto v = sizes_in_frozen_1_0(dir.path);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(kHttpFilterSize_1_0, v[0]);
  EXPECT_EQ(kNetworkFilterSize_1_0, v[1]);
  EXPECT_EQ(kDescriptorSize_1_0, v[2]);
}

// A module's tables as raw bytes of a chosen size, the way a module built against another minor
// lays them out.
struct Tables {
  alignas(sy_http_filter_t) unsigned char http[2 * sizeof(sy_http_filter_t) + 64] = {};
  alignas(sy_network_filter_t) unsigned char net[2 * sizeof(sy_network_filter_t) + 64] = {};
  const sy_http_filter_t* http_list[2] = {};
  const sy_network_filter_t* net_list[2] = {};
  sy_module_descriptor_t desc = {};
  Stamp stamp;

  Tables(size_t http_size, size_t net_size) {
    auto* h = reinterpret_cast<sy_http_filter_t*>(http);
    h->size = uint32_t(http_size);
    h->name = "f";
    auto* n = reinterpret_cast<sy_network_filter_t*>(net);
    n->size = uint32_t(net_size);
    n->name = "n";
    http_list[0] = h;
    net_list[0] = n;
    desc.size = sizeof desc;
    desc.abi_major = SY_ABI_MAJOR;
    desc.abi_minor = 0;
    desc.name = "sizes";
    desc.version = "1.0.0";
    desc.http_filters = http_list;
    desc.network_filters = net_list;
    stamp.abi_major = SY_ABI_MAJOR;
    stamp.abi_minor = 0;
    stamp.name = "sizes";
    stamp.version = "1.0.0";
  }
};

TEST(LoaderAbiSizes, AcceptsEveryTableSizeFromThe1_0LayoutUp) {
  for (size_t http : {kHttpFilterSize_1_0, sizeof(sy_http_filter_t), sizeof(sy_http_filter_t) + 64})
    for (size_t net :
         {kNetworkFilterSize_1_0, sizeof(sy_network_filter_t), sizeof(sy_network_filter_t) + 64}) {
      Tables t(http, net);
      EXPECT_EQ(check_descriptor("m.so", t.stamp, &t.desc), "") << http << " " << net;
    }
  Tables t(kHttpFilterSize_1_0, kNetworkFilterSize_1_0);
  t.desc.size = uint32_t(kDescriptorSize_1_0);
  EXPECT_EQ(check_descriptor("m.so", t.stamp, &t.desc), "");
}

TEST(LoaderAbiSizes, RefusesTablesSmallerThanThe1_0Layout) {
  Tables h(kHttpFilterSize_1_0 - sizeof(void*), kNetworkFilterSize_1_0);
  EXPECT_EQ(check_descriptor("m.so", h.stamp, &h.desc),
            "m.so: http filter #0 has size " + std::to_string(kHttpFilterSize_1_0 - sizeof(void*)) +
                ", expected at least " + std::to_string(kHttpFilterSize_1_0) +
                " (ABI 1.0): set .size = sizeof(sy_http_filter_t)");
  Tables n(kHttpFilterSize_1_0, kNetworkFilterSize_1_0 - sizeof(void*));
  EXPECT_NE(check_descriptor("m.so", n.stamp, &n.desc).find("network filter #0 has size"),
            std::string::npos);
  Tables d(kHttpFilterSize_1_0, kNetworkFilterSize_1_0);
  d.desc.size = uint32_t(kDescriptorSize_1_0 - sizeof(void*));
  EXPECT_NE(check_descriptor("m.so", d.stamp, &d.desc).find("the descriptor of m.so has size"),
            std::string::npos);
}

}  // namespace
}  // namespace sy::loader
