// The host table's header blocks: pseudo-headers made only when a filter needs them (issue 11),
// and header_set / header_add kept within the listener's header limits (EP-43).
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/filter_chain/chain.h"
#include "tests/unit/chain_fixtures.h"

namespace sy::filters {
namespace {

using namespace chain_test;

// ---- issue 11: pseudo-headers are made when a filter needs them ----------------------------

void* probe_create(void* config, sy_stream_t*) { return config; }

struct PseudoProbe {
  std::function<void(sy_stream_t*)> on_request;
};
sy_filter_status_t probe_req_headers(void* f, sy_stream_t* s, bool) {
  static_cast<PseudoProbe*>(f)->on_request(s);
  return SY_CONTINUE;
}
sy_http_filter_t probe_vt() {
  sy_http_filter_t vt{};
  vt.size = sizeof vt;
  vt.name = "probe";
  vt.on_stream_create = probe_create;
  vt.on_request_headers = probe_req_headers;
  return vt;
}
const sy_http_filter_t kProbeVt = probe_vt();

std::string header_text(sy_stream_t* s, sy_header_kind_t kind) {
  std::string out;
  sy_str_t n, v;
  for (size_t i = 0; host_table()->header_at(s, kind, i, &n, &v) == SY_OK; ++i)
    out += std::string(n.ptr, n.len) + "=" + std::string(v.ptr, v.len) + ";";
  return out;
}

TEST(PseudoHeaders, AFilterThatNamesNoneLeavesTheStreamsOwn) {
  Loop l;
  Sink sink(&l.loop);
  ModuleScope scope;
  // Reads by name only. (A mutation of the request block makes them: the listener's limits
  // count the request target in its bytes.)
  PseudoProbe p{[](sy_stream_t* s) {
    sy_str_t v;
    EXPECT_EQ(host_table()->header_get(s, SY_REQUEST_HEADERS, S("accept"), 0, &v), SY_OK);
    EXPECT_EQ(host_table()->header_count(s, SY_REQUEST_HEADERS, S("accept")), 1u);
  }};
  FilterChain chain(&sink, {factory_for(&kProbeVt, &p, &scope)}, sink.route, 1);
  chain.request_headers.add("accept", "*/*");
  chain.decode_headers(true);
  EXPECT_FALSE(chain.pseudo_in(SY_REQUEST));
  EXPECT_EQ(chain.request_headers.size(), 1u);
  EXPECT_EQ(chain.request_headers.get(":path"), nullptr);
}

TEST(PseudoHeaders, NamingOneOrListingAllPutsThemFirst) {
  Loop l;
  Sink sink(&l.loop);
  ModuleScope scope;
  std::string seen;
  PseudoProbe p{[&](sy_stream_t* s) {
    // Before any phase of the response, its block has no :status to make.
    EXPECT_EQ(header_text(s, SY_RESPONSE_HEADERS), "");
    sy_str_t v;
    ASSERT_EQ(host_table()->header_get(s, SY_REQUEST_HEADERS, S(":path"), 0, &v), SY_OK);
    EXPECT_EQ(std::string(v.ptr, v.len), "/p");
    host_table()->header_set(s, SY_REQUEST_HEADERS, S(":path"), S("/q"));
    seen = header_text(s, SY_REQUEST_HEADERS);
  }};
  FilterChain chain(&sink, {factory_for(&kProbeVt, &p, &scope)}, sink.route, 1);
  chain.request_headers.add("accept", "*/*");
  chain.decode_headers(true);
  EXPECT_EQ(seen, ":path=/q;accept=*/*;");  // made once, first, and changed in place
  EXPECT_TRUE(chain.pseudo_in(SY_REQUEST));
  EXPECT_FALSE(chain.pseudo_in(SY_RESPONSE));
}

// ---- EP-43: header_set / header_add within the listener's header limits ----------------------

TEST(HeaderLimits, GrowthPastTheCountOrBytesIsRefusedAndShrinkingIsNot) {
  Loop l;
  Sink sink(&l.loop);
  sink.limits = {3, 40};
  FilterChain chain(&sink, {}, sink.route, 1);
  chain.request_headers.add(":method", "GET");
  chain.request_headers.add(":path", "/0123456789");  // the target counts: 11 bytes
  chain.request_headers.add("a", "1");
  chain.request_headers.add("b", "2");  // 2 lines, 15 bytes
  sy_stream_t* s = chain.handle();
  const sy_host_t* h = host_table();
  EXPECT_EQ(h->header_add(s, SY_REQUEST_HEADERS, S("c"), S("3")), SY_OK);
  // A fourth line: refused, and the block is unchanged.
  EXPECT_EQ(h->header_add(s, SY_REQUEST_HEADERS, S("d"), S("4")), SY_ERR_TOO_LARGE);
  EXPECT_EQ(chain.request_headers.size(), 5u);
  // Setting an existing header replaces its values: the count stays, the bytes may grow to
  // the limit (15 + 1 + 24 = 40) and no further.
  EXPECT_EQ(h->header_set(s, SY_REQUEST_HEADERS, S("C"), S(std::string(24, 'x'))), SY_OK);
  EXPECT_EQ(h->header_set(s, SY_REQUEST_HEADERS, S("c"), S(std::string(25, 'x'))),
            SY_ERR_TOO_LARGE);
  EXPECT_EQ(h->header_set(s, SY_REQUEST_HEADERS, S(":path"), S("/01234567890")), SY_ERR_TOO_LARGE);
  // Pseudo-headers are not lines, and only the request target counts in bytes.
  EXPECT_EQ(h->header_set(s, SY_REQUEST_HEADERS, S(":method"), S("OPTIONS")), SY_OK);
  // Over the limits already (the limits went down), a change that does not grow still works.
  sink.limits = {2, 20};
  EXPECT_EQ(h->header_set(s, SY_REQUEST_HEADERS, S("c"), S("short")), SY_OK);
  EXPECT_EQ(h->header_add(s, SY_REQUEST_HEADERS, S("e"), S("")), SY_ERR_TOO_LARGE);
  // Trailers are counted on their own; no limits: anything goes.
  EXPECT_EQ(h->header_add(s, SY_RESPONSE_TRAILERS, S("t"), S("1")), SY_OK);
  sink.limits = {};
  EXPECT_EQ(h->header_add(s, SY_REQUEST_HEADERS, S("e"), S(std::string(100, 'x'))), SY_OK);
}

}  // namespace
}  // namespace sy::filters
