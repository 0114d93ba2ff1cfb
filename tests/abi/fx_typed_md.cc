// A test-only module on the SDK (build/tests/abi/libsy_fx_typed_md.so): filter "typed_md"
// drives the ABI 1.2 typed-metadata functions from request headers and reports what it reads
// in response headers (test_typed_metadata.py).
//
// Request headers it acts on, in this order:
//   x-md-string: V   metadata_set("authz", "user", V), the 1.0 call
//   x-md-set: JSON   metadata_ns_set("authz", JSON)
//   x-md-merge: JSON metadata_ns_merge("authz", JSON)
//   x-tenant: V      filter_state_set("tenant", V)
//   x-flag: V        set_response_flag(V)
//   x-reply: N       answer N itself (send_local_reply), after the above
//   x-add-body: V    (on a request without body) hold the headers, then from a stream timer
//                    continue_headers_with_body and inject V as the request's body
//   x-via-main: 1    hold the request, hop to the main thread (sdk::post_to_main) and back
//                    (sdk::post_to_filter), which sets request header x-via-main: back and resumes
//   x-via-worker: 1  sdk::post_to_worker to a worker that does not exist (response header
//                    x-rc-drop: "<status>:dropped" when its ON_DROP ran), then to this worker,
//                    an sdk::worker_timer there and sdk::post_to_filter back (x-via-worker: back)
// Response headers it sets ("-" for absent):
//   x-rc-set, x-rc-merge, x-rc-flag   the status codes of those calls
//   x-md-dynamic           metadata_ns_get("authz") of the dynamic metadata
//   x-md-user              metadata_get("authz", "user")
//   x-md-route, x-md-vhost, x-md-cluster   metadata_ns_get("team") of each config source
//   x-typed-<path, dots as dashes>   "<type>:<number>" or "<type>:<bytes>" of attribute_typed
//   x-buffer-limit         buffer_limit()
//   x-module-config        sdk::module_config(), the module's own `config:`
// Filter state "sdk_watermarks": the on_watermark calls, in order ("response:above,...").
#include <string>
#include <switchyard/sdk.hpp>

namespace {

namespace sdk = sy::sdk;

const char* const kTypedPaths[] = {
    "request.time",
    "request.duration",
    "request.size",
    "request.total_size",
    "response.code",
    "response.total_size",
    "source.port",
    "upstream.port",
    "connection.mtls",
    "request.method",
    "connection.uri_san_peer_certificate",
    "connection.dns_san_peer_certificate",
    "connection.subject_peer_certificate",
    "connection.id",
    "node.id",
    "node.cluster",
    "plugin_name",
};

class TypedMd final : public sdk::HttpFilter {
 public:
  sy_filter_status_t on_request_headers(bool end_stream) override {
    auto h = request_headers();
    if (auto v = h.get("x-md-string")) metadata_set("authz", "user", *v);
    if (auto v = h.get("x-md-set")) rc_set_ = std::to_string(metadata_ns_set("authz", *v));
    if (auto v = h.get("x-md-merge")) rc_merge_ = std::to_string(metadata_ns_merge("authz", *v));
    if (auto v = h.get("x-tenant")) filter_state_set("tenant", *v);
    if (auto v = h.get("x-flag")) rc_flag_ = std::to_string(set_response_flag(*v));
    if (auto v = h.get("x-reply")) {
      local_reply(uint32_t(std::stoul(std::string(*v))), "", "fx_typed_md_reply",
                  {{"x-rc-flag", rc_flag_}});
      return SY_STOP;
    }
    if (h.get("x-via-main")) {
      sy_stream_id_t id = this->id();
      uint32_t position = sdk::filter_index(stream());
      sy_status_t rc = sdk::post_to_main([id, position] {
        sdk::post_to_filter(id, position, [](sy_stream_t* s) { back(s, "x-via-main"); });
      });
      if (rc == SY_OK) return SY_STOP;
    }
    if (h.get("x-via-worker")) {
      // The SDK's drop-aware posts: to a worker that does not exist (dropped at once, ON_DROP
      // runs here), then to this stream's worker, a worker timer there, and back to the filter.
      bool dropped = false;
      sy_status_t none = sdk::post_to_worker(
          1 << 20, [](sy_worker_t*) {}, [&dropped] { dropped = true; });
      rc_drop_ = std::to_string(none) + (dropped ? ":dropped" : ":kept");
      sy_stream_id_t id = this->id();
      uint32_t position = sdk::filter_index(stream());
      int32_t worker = sdk::host()->worker_index(sdk::host()->stream_worker(stream()));
      sy_status_t rc = sdk::post_to_worker(worker, [id, position](sy_worker_t* w) {
        sdk::worker_timer(w, 1, [id, position](sy_worker_t*) {
          sdk::post_to_filter(id, position, [](sy_stream_t* s) { back(s, "x-via-worker"); });
        });
      });
      if (rc == SY_OK) return SY_STOP;
    }
    // ABI 1.2 queues the module owns: x-sdk-queue registers NAME with this worker's own handle
    // through the SDK, whose READY counts what it drains into shared data "NAME.items";
    // x-sdk-enqueue enqueues into NAME; x-sdk-items reads the count back (response header).
    if (auto v = h.get("x-sdk-queue")) {
      std::string name(*v);
      rc_queue_ = std::to_string(sdk::queue_register_on_worker(
          sdk::host()->stream_worker(stream()), name, [name](uint32_t id) { drain(name, id); }));
    }
    if (auto v = h.get("x-sdk-enqueue")) {
      uint32_t id = 0;
      sy_status_t rc = sdk::host()->queue_resolve(sdk::to_str(*v), &id);
      if (rc == SY_OK) rc = sdk::host()->queue_enqueue(id, sdk::to_str("job"));
      rc_queue_ = std::to_string(rc);
    }
    if (auto v = h.get("x-sdk-items")) {
      std::string key = std::string(*v) + ".items";
      sdk::host()->shared_get(
          sdk::to_str(key),
          [](void* ctx, sy_str_t b, uint64_t) {
            static_cast<std::string*>(ctx)->assign(b.ptr, b.len);
          },
          &items_);
    }
    if (auto v = h.get("x-add-body"); v && end_stream) {
      added_body_ = *v;
      sdk::host()->stream_timer(stream(), 0, add_body, nullptr, this);
      return SY_STOP;
    }
    return SY_CONTINUE;
  }

  sy_filter_status_t on_response_headers(bool) override {
    auto h = response_headers();
    h.set("x-rc-set", rc_set_);
    h.set("x-rc-merge", rc_merge_);
    if (!h.get("x-rc-flag")) h.set("x-rc-flag", rc_flag_);
    h.set("x-md-dynamic", metadata_ns_get("authz").value_or("-"));
    h.set("x-md-user", metadata_get("authz", "user").value_or("-"));
    h.set("x-md-route", metadata_ns_get("team", SY_METADATA_ROUTE).value_or("-"));
    h.set("x-md-vhost", metadata_ns_get("team", SY_METADATA_VIRTUAL_HOST).value_or("-"));
    h.set("x-md-cluster", metadata_ns_get("team", SY_METADATA_CLUSTER).value_or("-"));
    for (const char* path : kTypedPaths) {
      std::string name = "x-typed-" + std::string(path);
      for (char& c : name)
        if (c == '.' || c == '_') c = '-';
      auto v = attribute_typed(path);
      if (!v) {
        h.set(name, "-");
        continue;
      }
      bool text = v->type == SY_VALUE_STRING || v->type == SY_VALUE_BYTES;
      h.set(name,
            std::to_string(int(v->type)) + ":" + (text ? v->bytes : std::to_string(v->number)));
    }
    h.set("x-buffer-limit", std::to_string(buffer_limit().value_or(0)));
    h.set("x-sdk-queue-rc", rc_queue_);
    h.set("x-rc-drop", rc_drop_);
    h.set("x-sdk-items", items_);
    h.set("x-module-config", std::string(sdk::module_config().value_or("-")));
    return SY_CONTINUE;
  }

  void on_watermark(sy_direction_t dir, bool above) override {
    if (!watermarks_.empty()) watermarks_ += ',';
    watermarks_ +=
        std::string(dir == SY_REQUEST ? "request" : "response") + ":" + (above ? "above" : "below");
    filter_state_set("sdk_watermarks", watermarks_);
  }

 private:
  // Back on the stream's worker, as this filter: marks the request and lets it go on.
  static void back(sy_stream_t* s, const char* header) {
    sdk::host()->header_set(s, SY_REQUEST_HEADERS, sdk::to_str(header), sdk::to_str("back"));
    sdk::host()->resume(s, SY_REQUEST);
  }

  // The timer runs as this filter: its headers go on with a body, which it injects. (The SDK's
  // HttpFilter members work inside callbacks only: a timer uses S, the static helper and the
  // host table.)
  static void add_body(sy_stream_t* s, void* arg) {
    auto* self = static_cast<TypedMd*>(arg);
    const sy_host_t* h = sdk::host();
    sy_status_t rc = continue_headers_with_body(s, SY_REQUEST);
    if (rc != SY_OK) {
      std::string body = "continue_headers_with_body: " + std::to_string(rc) + "\n";
      h->send_local_reply(s, 500, nullptr, 0, sdk::to_str(body), sdk::to_str("fx_typed_md"));
      return;
    }
    h->inject_data(s, SY_REQUEST, sdk::to_str(self->added_body_), true);
  }

  // Runs on the worker that registered NAME: adds what it dequeues to "NAME.items".
  static void drain(const std::string& name, uint32_t id) {
    const sy_host_t* h = sdk::host();
    int n = 0;
    while (h->queue_dequeue(
               id, [](void* ctx, sy_str_t, uint64_t) { ++*static_cast<int*>(ctx); }, &n) == SY_OK) {
    }
    std::string key = name + ".items", old = "0";
    h->shared_get(
        sdk::to_str(key),
        [](void* ctx, sy_str_t b, uint64_t) {
          static_cast<std::string*>(ctx)->assign(b.ptr, b.len);
        },
        &old);
    h->shared_set(sdk::to_str(key), sdk::to_str(std::to_string(std::stoi(old) + n)), 0);
  }

  std::string rc_set_ = "-", rc_merge_ = "-", rc_flag_ = "-", added_body_, watermarks_;
  std::string rc_queue_ = "-", items_ = "-", rc_drop_ = "-";
};

}  // namespace

SY_SDK_MODULE("typed_md", "1.0.0", sdk::FilterFactory<TypedMd>("typed_md"))
