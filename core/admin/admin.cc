// Admin API: a small HTTP/1.1 server on the main loop, using the proxy's own parser.
#include "core/admin/admin.h"

#include <cstring>
#include <memory>

#include "config/json_text.h"
#include "core/http1/parser.h"
#include "core/http1/writer.h"
#include "core/log/log.h"
#include "core/net/socket.h"
#include "core/stats/stats.h"

namespace sy::admin {
namespace {

constexpr size_t kMaxAdminBody = 1 << 20;

// A one-level JSON object of FIELDS, one line.
template <class... Fields>
std::string json_object(const Fields&... fields) {
  std::string out;
  json::Writer w(out);
  w.begin_object();
  ((w.key(fields.first).value(fields.second)), ...);
  w.end_object();
  return out + "\n";
}

std::string json_error(std::string_view msg) { return json_object(std::pair{"error", msg}); }

// Reads "KEY": "string" from a small JSON object (the admin API's only input). An empty body
// is fine (OUT stays empty); false when the body is not an object with that shape.
bool json_string_field(const std::string& body, const std::string& key, std::string* out) {
  size_t i = body.find_first_not_of(" \t\r\n");
  if (i == std::string::npos) return true;
  if (body[i] != '{') return false;
  size_t k = body.find("\"" + key + "\"");
  if (k == std::string::npos) return true;  // other fields are ignored
  size_t colon = body.find(':', k + key.size() + 2);
  if (colon == std::string::npos) return false;
  size_t q = body.find('"', colon);
  if (q == std::string::npos) return false;
  std::string v;
  for (size_t j = q + 1; j < body.size(); ++j) {
    char c = body[j];
    if (c == '"') {
      *out = v;
      return true;
    }
    if (c == '\\' && j + 1 < body.size()) c = body[++j];
    v.push_back(c);
  }
  return false;
}

// One admin client connection; deletes itself when the socket is done.
class AdminConn : public net::SocketEvents, public http1::ParserHandler {
 public:
  AdminConn(AdminServer* admin, net::Socket* s)
      : admin_(admin), socket_(s), parser_(HTTP_REQUEST, this) {
    socket_->set_events(this);
    socket_->read_start();
  }
  ~AdminConn() override {
    if (socket_) socket_->close();
  }

  void on_read(const char* data, size_t len) override {
    while (len > 0 && socket_) {
      auto r = parser_.feed(data, len);
      if (r.status == http1::Parser::Status::kError) {
        respond({parser_.error_status(), "text/plain", parser_.error_reason() + "\n"}, true);
        return;
      }
      if (r.status != http1::Parser::Status::kPaused) return;
      data += r.consumed;
      len -= r.consumed;
      parser_.resume();
    }
  }
  void on_eof() override { done(); }
  void on_error(int) override { done(); }

  int on_head(http1::MessageHead& head) override {
    method_ = head.method;
    is_head_ = head.method == "HEAD";
    path_ = head.target.substr(0, head.target.find('?'));
    keep_alive_ = head.keep_alive;
    body_.clear();
    return 0;
  }
  void on_body(const char* data, size_t len) override {
    if (body_.size() + len <= kMaxAdminBody) body_.append(data, len);
  }
  void on_trailers(http::HeaderMap&) override {}
  void on_complete() override { respond(admin_->handle(method_, path_, body_), !keep_alive_); }

 private:
  void respond(const AdminServer::Response& r, bool close) {
    if (!socket_) return;
    std::string out;
    http1::append_status_line(out, r.status);
    out += "content-type: " + r.content_type +
           "\r\ncontent-length: " + std::to_string(r.body.size()) +
           "\r\ncache-control: no-store\r\n";
    if (close) out += "connection: close\r\n";
    out += "\r\n";
    if (!is_head_) out += r.body;
    socket_->write(out.data(), out.size());
    if (close) {
      socket_->end();
      socket_ = nullptr;
      done();
    }
  }
  void done() {
    if (dead_) return;
    dead_ = true;
    if (socket_) {
      socket_->close();
      socket_ = nullptr;
    }
    // Deleting from inside our own callback chain is unsafe; the main loop frees us next turn.
    auto* self = this;
    auto* t = new uv_timer_t;
    uv_timer_init(uv_default_loop(), t);
    t->data = self;
    uv_timer_start(
        t,
        [](uv_timer_t* h) {
          delete static_cast<AdminConn*>(h->data);
          uv_close(reinterpret_cast<uv_handle_t*>(h),
                   [](uv_handle_t* x) { delete reinterpret_cast<uv_timer_t*>(x); });
        },
        0, 0);
  }

  AdminServer* admin_;
  net::Socket* socket_;
  http1::Parser parser_;
  std::string method_, path_, body_;
  bool keep_alive_ = true;
  bool is_head_ = false;
  bool dead_ = false;
};

}  // namespace

AdminServer::AdminServer(Backend* server) : server_(server) {}

AdminServer::~AdminServer() {
  if (tcp_) {
    tcp_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(tcp_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }
}

std::string AdminServer::listen(const config::Address& address) {
  sockaddr_storage ss;
  if (!net::parse_sockaddr(address.host, address.port, &ss))
    return "admin: bad address " + address.str();
  uint16_t port = 0;
  int fd = net::listen_socket(ss, false, 128, &port);
  if (fd < 0) return "admin: cannot listen on " + address.str() + ": " + strerror(-fd);
  tcp_ = new uv_tcp_t;
  uv_tcp_init(server_->loop(), tcp_);
  uv_tcp_open(tcp_, fd);
  tcp_->data = this;
  uv_listen(reinterpret_cast<uv_stream_t*>(tcp_), 128, on_connection);
  bound_ = address.host + ":" + std::to_string(port);
  return "";
}

void AdminServer::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<AdminServer*>(server->data);
  if (status != 0 || !self) return;
  net::Socket* s = net::Socket::accept(server, nullptr);
  if (s) new AdminConn(self, s);
}

AdminServer::Response AdminServer::handle(const std::string& method, const std::string& path,
                                          const std::string& body) {
  auto only = [&](const char* m) { return method == m; };
  if (path == "/ready") {
    if (!only("GET") && !only("HEAD")) return {405, "application/json", json_error("use GET")};
    if (server_->ready()) return {200, "text/plain", "ready\n"};
    return {503, "text/plain", "not ready\n"};
  }
  if (path == "/stats") {
    if (!only("GET")) return {405, "application/json", json_error("use GET")};
    server_->refresh_module_stats();
    return {200, "text/plain", stats::registry().render_text()};
  }
  if (path == "/stats/prometheus") {
    if (!only("GET")) return {405, "application/json", json_error("use GET")};
    server_->refresh_module_stats();
    return {200, "text/plain; version=0.0.4", stats::registry().render_prometheus()};
  }
  if (path == "/config_dump") {
    if (!only("GET")) return {405, "application/json", json_error("use GET")};
    return {200, "application/json", server_->config_dump()};
  }
  if (path == "/reload") {
    if (!only("POST")) return {405, "application/json", json_error("use POST")};
    std::string err = server_->reload();
    if (!err.empty()) return {400, "application/json", json_error(err)};
    return {200, "application/json",
            json_object(std::pair{"status", "ok"}, std::pair{"version", server_->version()})};
  }
  if (path == "/drain") {
    if (!only("POST")) return {405, "application/json", json_error("use POST")};
    server_->drain();
    return {202, "application/json", json_object(std::pair{"status", "draining"})};
  }
  if (path == "/modules") {
    if (!only("GET")) return {405, "application/json", json_error("use GET")};
    return {200, "application/json", server_->modules_json()};
  }
  if (path.rfind("/modules/", 0) == 0) {
    std::string rest = path.substr(9);
    size_t slash = rest.find('/');
    std::string name = rest.substr(0, slash);
    std::string action = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (name.empty() || (action != "reload" && action != "rollback"))
      return {404, "application/json", json_error("use POST /modules/NAME/reload or /rollback")};
    if (!only("POST")) return {405, "application/json", json_error("use POST")};
    uint64_t gen = 0;
    std::string err;
    if (action == "reload") {
      std::string file;
      if (!json_string_field(body, "path", &file))
        return {400, "application/json", json_error("body must be empty or {\"path\": \"...\"}")};
      err = server_->swap_module(name, file, &gen);
    } else {
      err = server_->rollback_module(name, &gen);
    }
    if (!err.empty()) return {409, "application/json", json_error(err)};
    // NAME comes from the request path: quoted like any string, whatever it holds.
    return {200, "application/json",
            json_object(std::pair{"module", name}, std::pair{"generation", gen})};
  }
  if (path == "/") {
    return {200, "application/json",
            "{\"endpoints\":[\"GET /ready\",\"GET /stats\",\"GET /stats/prometheus\","
            "\"GET /config_dump\",\"POST /reload\",\"POST /drain\",\"GET /modules\","
            "\"POST /modules/NAME/reload\",\"POST /modules/NAME/rollback\"]}\n"};
  }
  return {404, "application/json", json_error("no such admin endpoint: " + path)};
}

}  // namespace sy::admin
