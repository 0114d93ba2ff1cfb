// FilterChain iteration rules: order, reverse order, SY_STOP and resume, SY_STOP_AND_BUFFER on
// headers and bodies, per-route disable, body edits through the host table, buffer limits.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/filter_chain/chain.h"
#include "core/filter_chain/stream_registry.h"

namespace sy::filters {
namespace {

struct Sink : ChainSink {
  std::vector<std::string> events;
  std::string req_body, resp_body;
  int64_t req_len = 0, resp_len = 0;
  int reply_status = 0;
  bool started = false;
  void request_headers_out(bool end, int64_t len) override {
    events.push_back(std::string("req_headers") + (end ? "+end" : ""));
    req_len = len;
  }
  void request_data_out(std::string& d, bool end) override {
    req_body += d;
    if (end) events.push_back("req_end");
  }
  void request_trailers_out() override { events.push_back("req_trailers"); }
  void response_headers_out(bool end, int64_t len) override {
    events.push_back(std::string("resp_headers") + (end ? "+end" : ""));
    resp_len = len;
  }
  void response_data_out(std::string& d, bool end) override {
    resp_body += d;
    if (end) events.push_back("resp_end");
  }
  void response_trailers_out() override { events.push_back("resp_trailers"); }
  void pause_source(sy_direction_t) override { events.push_back("pause"); }
  void resume_source(sy_direction_t) override { events.push_back("resume"); }
  bool local_reply_from_filter(int status, const http::HeaderMap&, std::string_view,
                               std::string) override {
    reply_status = status;
    started = true;
    return true;
  }
  bool response_started() const override { return started; }
  void clear_route_cache() override {}
  bool set_upstream_override(std::string_view) override { return true; }
  bool attribute(std::string_view, std::string*) const override { return false; }
  const std::string& route_name() const override { return route; }
  uv_loop_t* loop() const override { return nullptr; }
  int worker_index() const override { return 0; }
  uint64_t buffer_limit() const override { return limit; }
  std::string route = "r";
  uint64_t limit = 1 << 20;
};

// A scriptable filter: each instance records calls into a shared log and returns what the
// test told it to.
struct Script {
  std::string name;
  std::vector<std::string>* log;
  sy_filter_status_t req_headers = SY_CONTINUE, req_body = SY_CONTINUE;
  sy_filter_status_t resp_headers = SY_CONTINUE, resp_body = SY_CONTINUE;
  std::string upper_body;  // when set, response body chunks are replaced by this
};

sy_filter_status_t f_req_headers(void* f, sy_stream_t*, bool end) {
  auto* s = static_cast<Script*>(f);
  s->log->push_back(s->name + ".req_headers" + (end ? "+end" : ""));
  return s->req_headers;
}
sy_filter_status_t f_req_body(void* f, sy_stream_t* st, bool end) {
  auto* s = static_cast<Script*>(f);
  sy_str_t chunk, all;
  host_table()->body_get(st, SY_REQUEST, SY_BODY_CHUNK, &chunk);
  host_table()->body_get(st, SY_REQUEST, SY_BODY_BUFFERED, &all);
  s->log->push_back(s->name + ".req_body(" + std::string(chunk.ptr, chunk.len) + "|" +
                    std::string(all.ptr, all.len) + ")" + (end ? "+end" : ""));
  return s->req_body;
}
sy_filter_status_t f_resp_headers(void* f, sy_stream_t*, bool end) {
  auto* s = static_cast<Script*>(f);
  s->log->push_back(s->name + ".resp_headers" + (end ? "+end" : ""));
  return s->resp_headers;
}
sy_filter_status_t f_resp_body(void* f, sy_stream_t* st, bool end) {
  auto* s = static_cast<Script*>(f);
  s->log->push_back(s->name + ".resp_body" + (end ? "+end" : ""));
  if (!s->upper_body.empty())
    host_table()->body_replace(st, SY_RESPONSE, SY_BODY_CHUNK,
                               {s->upper_body.data(), s->upper_body.size()});
  return s->resp_body;
}

void* f_create(void* config, sy_stream_t*) { return config; }

sy_http_filter_t make_vt() {
  sy_http_filter_t vt{};
  vt.size = sizeof vt;
  vt.name = "script";
  vt.on_stream_create = f_create;
  vt.on_request_headers = f_req_headers;
  vt.on_request_body = f_req_body;
  vt.on_response_headers = f_resp_headers;
  vt.on_response_body = f_resp_body;
  return vt;
}

const sy_http_filter_t kVt = make_vt();

struct FilterChainTest : ::testing::Test {
  Sink sink;
  std::vector<std::string> log;
  std::vector<std::unique_ptr<Script>> scripts;
  std::vector<std::shared_ptr<HttpFilterFactory>> factories;
  ModuleScope scope;

  Script* add(const std::string& name) {
    scripts.push_back(std::make_unique<Script>());
    Script* s = scripts.back().get();
    s->name = name;
    s->log = &log;
    auto f = std::make_shared<HttpFilterFactory>();
    f->vt = &kVt;
    f->config = s;
    f->scope = &scope;
    f->module = name;
    factories.push_back(f);
    return s;
  }
  std::unique_ptr<FilterChain> chain() {
    return std::make_unique<FilterChain>(&sink, factories, sink.route, 1);
  }
  void TearDown() override {
    for (auto& f : factories) f->config = nullptr;  // scripts are owned by the test
  }
};

TEST_F(FilterChainTest, RequestsInOrderResponsesInReverse) {
  add("a");
  add("b");
  auto c = chain();
  c->decode_headers(true);
  c->encode_headers(false);
  c->encode_data("x", true);
  std::vector<std::string> want = {"a.req_headers+end", "b.req_headers+end", "b.resp_headers",
                                   "a.resp_headers",    "b.resp_body+end",   "a.resp_body+end"};
  EXPECT_EQ(log, want);
  EXPECT_EQ(sink.events[0], "req_headers+end");
  EXPECT_EQ(sink.resp_body, "x");
}

TEST_F(FilterChainTest, StopHoldsEverythingUntilResume) {
  Script* a = add("a");
  add("b");
  a->req_headers = SY_STOP;
  auto c = chain();
  c->decode_headers(false);
  c->decode_data("hello", false);
  c->decode_data(" world", true);
  EXPECT_TRUE(sink.events.empty());
  EXPECT_EQ(log, std::vector<std::string>{"a.req_headers"});  // no body callbacks while stopped
  ASSERT_EQ(c->resume(SY_REQUEST), SY_OK);
  EXPECT_EQ(sink.req_body, "hello world");
  ASSERT_GE(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0], "req_headers");
  EXPECT_EQ(sink.req_len, 11);  // the whole body was held: its length is known
  EXPECT_EQ(sink.events.back(), "req_end");
  EXPECT_EQ(c->resume(SY_REQUEST), SY_ERR_WRONG_PHASE);  // nothing is paused any more
}

TEST_F(FilterChainTest, StopAndBufferOnHeadersStillDeliversBody) {
  Script* a = add("a");
  Script* b = add("b");
  a->req_headers = SY_STOP_AND_BUFFER;
  a->req_body = SY_STOP_AND_BUFFER;
  auto c = chain();
  c->decode_headers(false);
  c->decode_data("ab", false);
  c->decode_data("cd", false);
  EXPECT_TRUE(sink.events.empty());
  a->req_body = SY_CONTINUE;
  c->decode_data("ef", true);
  std::vector<std::string> want = {"a.req_headers",       "a.req_body(ab|ab)",
                                   "a.req_body(cd|abcd)", "a.req_body(ef|abcdef)+end",
                                   "b.req_headers",       "b.req_body(abcdef|abcdef)+end"};
  EXPECT_EQ(log, want);
  EXPECT_EQ(sink.req_body, "abcdef");
  EXPECT_EQ(sink.req_len, 6);
  (void)b;
}

TEST_F(FilterChainTest, BodyFilterMakesLengthUnknown) {
  Script* a = add("a");
  a->upper_body = "HELLO!";
  auto c = chain();
  c->encode_headers(false);
  EXPECT_EQ(sink.resp_len, ChainSink::kUnknownLength);
  c->encode_data("hello", true);
  EXPECT_EQ(sink.resp_body, "HELLO!");
}

TEST_F(FilterChainTest, HeadersOnlyFilterKeepsLength) {
  sy_http_filter_t vt = make_vt();
  vt.on_response_body = nullptr;
  vt.on_request_body = nullptr;
  Script* a = add("a");
  factories.back()->vt = &vt;
  auto c = chain();
  c->encode_headers(false);
  EXPECT_EQ(sink.resp_len, ChainSink::kKeepLength);
  (void)a;
}

// The chain counts the filters that take body callbacks (any_body_filter is a read, not a
// walk): a filter leaves the count once, however often it calls skip_body, from whichever
// callback; a filter that stays out of the stream (on_stream_create returned null) never
// counts; and a direction whose filters have no headers callback still gets the right length.
sy_filter_status_t f_req_headers_skip(void* f, sy_stream_t* st, bool end) {
  host_table()->skip_body(st, SY_REQUEST);
  host_table()->skip_body(st, SY_REQUEST);  // a second call changes nothing
  return f_req_headers(f, st, end);
}
void* f_create_skipping_response(void* config, sy_stream_t* st) {
  host_table()->skip_body(st, SY_RESPONSE);
  return config;
}
void* f_create_none(void*, sy_stream_t*) { return nullptr; }

TEST_F(FilterChainTest, SkipBodyLeavesTheBodyFilterCountOnce) {
  sy_http_filter_t skipping = make_vt();
  skipping.on_request_headers = f_req_headers_skip;
  add("a");
  factories.back()->vt = &skipping;
  add("b");
  auto c = chain();
  EXPECT_TRUE(c->any_body_filter(SY_REQUEST));
  c->decode_headers(false);
  // a stepped out (twice); b still takes the body.
  EXPECT_TRUE(c->any_body_filter(SY_REQUEST));
  EXPECT_EQ(sink.req_len, ChainSink::kUnknownLength);
  c->decode_data("x", true);
  EXPECT_EQ(log.back(), "b.req_body(x|x)+end");
  EXPECT_EQ(sink.req_body, "x");
}

TEST_F(FilterChainTest, EveryFilterSkippingTheBodyLetsItPassUntouched) {
  sy_http_filter_t skipping = make_vt();
  skipping.on_request_headers = f_req_headers_skip;
  add("a");
  factories.back()->vt = &skipping;
  add("b");
  factories.back()->vt = &skipping;
  auto c = chain();
  c->decode_headers(false);
  EXPECT_FALSE(c->any_body_filter(SY_REQUEST));
  EXPECT_TRUE(c->body_passthrough(SY_REQUEST));
  c->decode_data("xy", true);
  EXPECT_EQ(log, (std::vector<std::string>{"a.req_headers", "b.req_headers"}));
  EXPECT_EQ(sink.req_body, "xy");
  EXPECT_EQ(sink.events.back(), "req_end");
}

TEST_F(FilterChainTest, SkipBodyFromStreamCreateAndFiltersThatStayOutAreNotCounted) {
  sy_http_filter_t skipping = make_vt();
  skipping.on_stream_create = f_create_skipping_response;
  sy_http_filter_t absent = make_vt();
  absent.on_stream_create = f_create_none;
  add("a");
  factories.back()->vt = &skipping;
  add("b");
  factories.back()->vt = &absent;
  auto c = chain();
  EXPECT_FALSE(c->any_body_filter(SY_RESPONSE));
  EXPECT_TRUE(c->any_body_filter(SY_REQUEST));  // a still takes the request body
  c->encode_headers(false);
  EXPECT_EQ(sink.resp_len, ChainSink::kKeepLength);
  c->encode_data("z", true);
  EXPECT_EQ(log, std::vector<std::string>{"a.resp_headers"});
  EXPECT_EQ(sink.resp_body, "z");
}

TEST_F(FilterChainTest, BodyOnlyFilterGetsTheBodyAndTheHeadersGoStraightOn) {
  sy_http_filter_t body_only = make_vt();
  body_only.on_request_headers = nullptr;
  body_only.on_response_headers = nullptr;
  Script* a = add("a");
  factories.back()->vt = &body_only;
  a->upper_body = "HI";
  auto c = chain();
  c->encode_headers(false);
  EXPECT_EQ(sink.events, std::vector<std::string>{"resp_headers"});
  EXPECT_EQ(sink.resp_len, ChainSink::kUnknownLength);  // a may change the body
  c->encode_data("hello", true);
  EXPECT_EQ(log, std::vector<std::string>{"a.resp_body+end"});
  EXPECT_EQ(sink.resp_body, "HI");
}

TEST_F(FilterChainTest, PerRouteDisableSkipsTheFilter) {
  add("a");
  add("b");
  factories[0]->route_configs["r"].disabled = true;
  auto c = chain();
  c->decode_headers(true);
  EXPECT_EQ(log, std::vector<std::string>{"b.req_headers+end"});
}

TEST_F(FilterChainTest, BufferLimitAnswers413) {
  Script* a = add("a");
  a->req_body = SY_STOP_AND_BUFFER;
  sink.limit = 8;
  auto c = chain();
  c->decode_headers(false);
  c->decode_data("12345", false);
  EXPECT_EQ(sink.reply_status, 0);
  c->decode_data("67890", false);
  EXPECT_EQ(sink.reply_status, 413);
  c->decode_data("more", true);  // ignored: the chain is halted
  EXPECT_TRUE(sink.req_body.empty());
}

TEST_F(FilterChainTest, ResponseBufferLimitAnswers500) {
  Script* a = add("a");
  a->resp_body = SY_STOP_AND_BUFFER;
  sink.limit = 4;
  auto c = chain();
  c->encode_headers(false);
  c->encode_data("123456", false);
  EXPECT_EQ(sink.reply_status, 500);
}

TEST_F(FilterChainTest, HeldDataPausesTheSourceAtTheWatermark) {
  Script* a = add("a");
  a->req_headers = SY_STOP;
  auto c = chain();
  c->decode_headers(false);
  c->decode_data(std::string(net::Socket::kHighWatermark + 1, 'x'), false);
  ASSERT_FALSE(sink.events.empty());
  EXPECT_EQ(sink.events.back(), "pause");
  c->resume(SY_REQUEST);
  EXPECT_NE(std::find(sink.events.begin(), sink.events.end(), "resume"), sink.events.end());
}

TEST_F(FilterChainTest, HeaderEditsThroughHostTable) {
  add("a");
  auto c = chain();
  c->request_headers.add(":path", "/x");
  c->request_headers.add("x-a", "1");
  c->request_headers.add("x-a", "2");
  const sy_host_t* h = host_table();
  sy_stream_t* s = c->handle();
  EXPECT_EQ(h->header_count(s, SY_REQUEST_HEADERS, {"x-a", 3}), 2u);
  sy_str_t v;
  ASSERT_EQ(h->header_get(s, SY_REQUEST_HEADERS, {"X-A", 3}, 1, &v), SY_OK);
  EXPECT_EQ(std::string(v.ptr, v.len), "2");
  EXPECT_EQ(h->header_set(s, SY_REQUEST_HEADERS, {"x-a", 3}, {"3", 1}), SY_OK);
  EXPECT_EQ(h->header_count(s, SY_REQUEST_HEADERS, {"x-a", 3}), 1u);
  EXPECT_EQ(h->header_add(s, SY_REQUEST_HEADERS, {"bad name", 8}, {"v", 1}), SY_ERR_INVALID);
  EXPECT_EQ(h->header_add(s, SY_REQUEST_HEADERS, {"x-b", 3}, {"a\r\nb", 4}), SY_ERR_INVALID);
  EXPECT_EQ(h->header_remove(s, SY_REQUEST_HEADERS, {"x-a", 3}), SY_OK);
  EXPECT_EQ(h->header_get(s, SY_REQUEST_HEADERS, {"x-a", 3}, 0, &v), SY_ERR_NOT_FOUND);
  // Trailers can be created by a filter.
  EXPECT_EQ(h->header_add(s, SY_RESPONSE_TRAILERS, {"x-t", 3}, {"1", 1}), SY_OK);
  EXPECT_TRUE(c->has_response_trailers);
}

TEST_F(FilterChainTest, MetadataAndFilterState) {
  add("a");
  auto c = chain();
  const sy_host_t* h = host_table();
  sy_stream_t* s = c->handle();
  sy_str_t v;
  EXPECT_EQ(h->metadata_get(s, {"ns", 2}, {"k", 1}, &v), SY_ERR_NOT_FOUND);
  EXPECT_EQ(h->metadata_set(s, {"ns", 2}, {"k", 1}, {"{\"a\":1}", 7}), SY_OK);
  ASSERT_EQ(h->metadata_get(s, {"ns", 2}, {"k", 1}, &v), SY_OK);
  EXPECT_EQ(std::string(v.ptr, v.len), "{\"a\":1}");
  EXPECT_EQ(h->filter_state_set(s, {"fs", 2}, {"x", 1}), SY_OK);
  ASSERT_EQ(h->filter_state_get(s, {"fs", 2}, &v), SY_OK);
  EXPECT_EQ(std::string(v.ptr, v.len), "x");
}

// A filter's header_set: a lower-case name is stored as it is, any other lowered, and either
// replaces the values the block has under any spelling; names and values are still checked.
TEST_F(FilterChainTest, HeaderSetLowersOnlyWhatNeedsIt) {
  add("a");
  auto c = chain();
  const sy_host_t* h = host_table();
  sy_stream_t* s = c->handle();
  c->response_headers.add("x-one", "0");
  EXPECT_EQ(h->header_set(s, SY_RESPONSE_HEADERS, {"X-One", 5}, {"1", 1}), SY_OK);
  EXPECT_EQ(h->header_set(s, SY_RESPONSE_HEADERS, {"x-two", 5}, {"2", 1}), SY_OK);
  EXPECT_EQ(h->header_add(s, SY_RESPONSE_HEADERS, {"X-TWO", 5}, {"3", 1}), SY_OK);
  ASSERT_EQ(c->response_headers.size(), 3u);
  EXPECT_EQ(c->response_headers.raw()[0].name, "x-one");
  EXPECT_EQ(c->response_headers.raw()[0].value, "1");
  EXPECT_EQ(c->response_headers.raw()[1].name, "x-two");
  EXPECT_EQ(c->response_headers.raw()[2].name, "x-two");
  EXPECT_EQ(h->header_set(s, SY_RESPONSE_HEADERS, {"x-two", 5}, {"4", 1}), SY_OK);
  EXPECT_EQ(c->response_headers.get_all("x-two"), std::vector<std::string_view>{"4"});
  EXPECT_EQ(h->header_set(s, SY_RESPONSE_HEADERS, {"x two", 5}, {"v", 1}), SY_ERR_INVALID);
  EXPECT_EQ(h->header_set(s, SY_RESPONSE_HEADERS, {"X-Two", 5}, {"a\nb", 3}), SY_ERR_INVALID);
  EXPECT_EQ(c->response_headers.size(), 2u);
}

// Chains with filters reuse the entry vectors of ended ones (per thread): a chain that ended
// holding both directions, with bytes held and a filter stepped out of a body, leaves nothing
// of that to the chains after it.
TEST_F(FilterChainTest, AnEndedChainLeavesNoStateToTheNext) {
  sy_http_filter_t skipping = make_vt();
  skipping.on_request_headers = f_req_headers_skip;
  Script* a = add("a");
  factories.back()->vt = &skipping;
  Script* b = add("b");
  b->req_body = SY_STOP_AND_BUFFER;
  b->resp_headers = SY_STOP;
  {
    auto held = chain();
    held->decode_headers(false);
    held->decode_data("held", false);
    held->encode_headers(false);
    held->encode_data("held too", false);
    EXPECT_TRUE(sink.events.size() == 1 && sink.events[0] == "req_headers");
  }
  sink.events.clear();
  sink.req_body.clear();
  b->req_body = SY_CONTINUE;
  b->resp_headers = SY_CONTINUE;
  factories[0]->vt = &kVt;  // no filter steps out of the body this time
  for (int i = 0; i < 3; ++i) {
    log.clear();
    auto next = chain();
    next->decode_headers(false);
    next->decode_data("x", true);
    next->encode_headers(false);
    next->encode_data("y", true);
    std::vector<std::string> want = {"a.req_headers",       "b.req_headers",  "a.req_body(x|x)+end",
                                     "b.req_body(x|x)+end", "b.resp_headers", "a.resp_headers",
                                     "b.resp_body+end",     "a.resp_body+end"};
    EXPECT_EQ(log, want);
  }
  EXPECT_EQ(sink.req_body, "xxx");
  EXPECT_EQ(sink.resp_body, "yyy");
  (void)a;
}

// A direction that a filter has taken over passes nothing on by itself, even when no filter
// has a body callback: the stream may not write its body straight through (body_passthrough).
sy_filter_status_t f_req_headers_stop(void*, sy_stream_t*, bool) { return SY_STOP; }

TEST_F(FilterChainTest, AnOwnedBodyIsNotPassedThrough) {
  sy_http_filter_t owner{};
  owner.size = sizeof owner;
  owner.name = "owner";
  owner.on_stream_create = f_create;
  owner.on_request_headers = f_req_headers_stop;
  add("a");
  factories.back()->vt = &owner;
  auto c = chain();
  c->decode_headers(false);
  EXPECT_FALSE(c->body_passthrough(SY_REQUEST));  // the headers are held
  c->run_as(0, [&] { EXPECT_EQ(c->continue_headers_take_body(SY_REQUEST), SY_OK); });
  ASSERT_EQ(sink.events, std::vector<std::string>{"req_headers"});
  EXPECT_FALSE(c->any_body_filter(SY_REQUEST));
  EXPECT_FALSE(c->body_passthrough(SY_REQUEST));
  c->decode_data("not passed on", true);
  EXPECT_EQ(sink.req_body, "");
}

// The id is made when first asked for, on the worker the stream started on, and is never
// another stream's.
TEST_F(FilterChainTest, StreamIdIsMadeWhenFirstAskedFor) {
  add("a");
  FilterChain first(&sink), second(&sink);
  first.start(factories, sink.route, 3);
  second.start(factories, sink.route, 3);
  sy_stream_id_t id2 = host_table()->stream_id(second.handle());
  sy_stream_id_t id1 = host_table()->stream_id(first.handle());
  EXPECT_NE(id1, 0u);
  EXPECT_NE(id1, id2);
  EXPECT_EQ(stream_worker(id1), 3);
  EXPECT_EQ(first.id(), id1);
  FilterChain empty(&sink);
  empty.start({}, sink.route, 3);
  EXPECT_EQ(empty.id(), 0u);  // a stream without filters has none
}

TEST(SharedDataTest, CompareAndSwap) {
  const sy_host_t* h = host_table();
  uint64_t cas = 0;
  std::string got;
  auto sink = [](void* ctx, sy_str_t b, uint64_t c) {
    auto* p = static_cast<std::pair<std::string*, uint64_t*>*>(ctx);
    p->first->assign(b.ptr, b.len);
    *p->second = c;
  };
  std::pair<std::string*, uint64_t*> ctx{&got, &cas};
  EXPECT_EQ(h->shared_get({"unit.k", 6}, sink, &ctx), SY_ERR_NOT_FOUND);
  EXPECT_EQ(h->shared_set({"unit.k", 6}, {"v1", 2}, 0), SY_OK);
  ASSERT_EQ(h->shared_get({"unit.k", 6}, sink, &ctx), SY_OK);
  EXPECT_EQ(got, "v1");
  uint64_t first = cas;
  EXPECT_EQ(h->shared_set({"unit.k", 6}, {"v2", 2}, first), SY_OK);
  EXPECT_EQ(h->shared_set({"unit.k", 6}, {"v3", 2}, first), SY_ERR_CAS_MISMATCH);
  h->shared_get({"unit.k", 6}, sink, &ctx);
  EXPECT_EQ(got, "v2");
  uint32_t q;
  EXPECT_EQ(h->queue_register(nullptr, nullptr, {"unit.q", 6}, &q), SY_OK);
  EXPECT_EQ(h->queue_dequeue(q, sink, &ctx), SY_ERR_EMPTY);
  EXPECT_EQ(h->queue_enqueue(q, {"m1", 2}), SY_OK);
  EXPECT_EQ(h->queue_dequeue(q, sink, &ctx), SY_OK);
  EXPECT_EQ(got, "m1");
  uint32_t q2;
  EXPECT_EQ(h->queue_resolve({"unit.q", 6}, &q2), SY_OK);
  EXPECT_EQ(q, q2);
}

TEST(StreamPosts, StaleIdIsDroppedNotDereferenced) {
  const sy_host_t* h = host_table();
  static int dropped = 0;
  sy_stream_id_t stale = next_stream_id(0);  // never registered
  EXPECT_EQ(h->post_to_stream(
                stale, [](sy_stream_t*, void*) { FAIL(); }, [](void*) { ++dropped; }, nullptr),
            SY_ERR_STALE);
  EXPECT_EQ(dropped, 1);
}

}  // namespace
}  // namespace sy::filters
