// Route matching: compiled path, host and header matchers, evaluated first-match-wins.
#include "core/router/router.h"

#include <re2/re2.h>

#include <string>

namespace sy::router {

struct Router::CompiledHeader {
  enum class Kind { kPresent, kExact, kPrefix, kRegex };
  std::string name;  // lower-case, as HeaderMap stores names
  Kind kind = Kind::kPresent;
  std::string value;  // exact or prefix
  std::unique_ptr<re2::RE2> re;
  bool invert = false;
};

struct Router::CompiledRoute {
  enum class PathKind { kAny, kPrefix, kExact, kRegex };
  PathKind path_kind = PathKind::kAny;
  std::string path;  // prefix or exact path
  std::unique_ptr<re2::RE2> path_re;
  // Empty (and any_host false) means every host.
  bool any_host = false;
  std::vector<std::string> exact_hosts;  // lower-case, no port, no brackets
  std::vector<std::string> suffixes;     // ".example.com" for "*.example.com"
  std::vector<CompiledHeader> headers;
  int index = 0;
};

namespace {

// Compiles PATTERN for full matches; reports a bad one against the route.
std::unique_ptr<re2::RE2> compile(const std::string& pattern, const config::Route& route,
                                  const std::string& what, std::vector<config::Error>* errors) {
  re2::RE2::Options opts;
  opts.set_log_errors(false);  // the error goes into the config report, not stderr
  auto re = std::make_unique<re2::RE2>(pattern, opts);
  if (!re->ok()) {
    if (errors != nullptr)
      errors->push_back(config::Error{
          route.loc,
          "invalid " + what + " '" + pattern + "' in route '" + route.name + "': " + re->error()});
    return nullptr;
  }
  return re;
}

bool ends_with_icase(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && http::iequals(s.substr(s.size() - suffix.size()), suffix);
}

// The host of an authority: "[::1]:80" -> "::1", "Example.com:8080" -> "Example.com",
// "example.com." -> "example.com". Case is left alone; comparisons ignore it.
std::string_view host_of(std::string_view authority) {
  std::string_view host = authority;
  if (!host.empty() && host[0] == '[') {
    size_t close = host.find(']');
    host = close == std::string_view::npos ? host.substr(1) : host.substr(1, close - 1);
    return host;
  }
  size_t colon = host.find(':');
  // More than one colon and no brackets: a bare IPv6 literal, which has no port to strip.
  if (colon != std::string_view::npos && host.find(':', colon + 1) == std::string_view::npos)
    host = host.substr(0, colon);
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return host;
}

}  // namespace

std::unique_ptr<Router> Router::build(const config::Listener& listener,
                                      std::vector<config::Error>* errors) {
  std::unique_ptr<Router> router(new Router());
  bool ok = true;
  int index = 0;
  for (const config::Route& route : listener.routes) {
    CompiledRoute cr;
    cr.index = index++;
    const config::RouteMatch& m = route.match;
    if (m.prefix) {
      cr.path_kind = CompiledRoute::PathKind::kPrefix;
      cr.path = *m.prefix;
    } else if (m.path) {
      cr.path_kind = CompiledRoute::PathKind::kExact;
      cr.path = *m.path;
    } else if (m.regex) {
      cr.path_kind = CompiledRoute::PathKind::kRegex;
      cr.path_re = compile(*m.regex, route, "path regex", errors);
      ok = ok && cr.path_re != nullptr;
    }
    for (const std::string& h : m.hosts) {
      if (h == "*") {
        cr.any_host = true;
      } else if (h.size() > 2 && h[0] == '*' && h[1] == '.') {
        cr.suffixes.push_back(h.substr(1));
      } else {
        cr.exact_hosts.push_back(http::to_lower(h));
      }
    }
    if (m.hosts.empty()) cr.any_host = true;
    for (const config::HeaderMatcher& hm : m.headers) {
      CompiledHeader ch;
      ch.name = http::to_lower(hm.name);
      ch.invert = hm.invert;
      if (hm.exact) {
        ch.kind = CompiledHeader::Kind::kExact;
        ch.value = *hm.exact;
      } else if (hm.prefix) {
        ch.kind = CompiledHeader::Kind::kPrefix;
        ch.value = *hm.prefix;
      } else if (hm.regex) {
        ch.kind = CompiledHeader::Kind::kRegex;
        ch.re = compile(*hm.regex, route, ("header regex for '" + hm.name + "'").c_str(), errors);
        ok = ok && ch.re != nullptr;
      } else {
        ch.kind = CompiledHeader::Kind::kPresent;
      }
      cr.headers.push_back(std::move(ch));
    }
    router->routes_.push_back(std::move(cr));
  }
  if (!ok) return nullptr;
  return router;
}

Router::~Router() = default;

int Router::match(const RequestView& req) const {
  std::string_view path = req.path.substr(0, req.path.find('?'));
  std::string_view host = host_of(req.authority);
  for (const CompiledRoute& r : routes_) {
    switch (r.path_kind) {
      case CompiledRoute::PathKind::kAny:
        break;
      case CompiledRoute::PathKind::kPrefix:
        if (path.substr(0, r.path.size()) != r.path) continue;
        break;
      case CompiledRoute::PathKind::kExact:
        if (path != r.path) continue;
        break;
      case CompiledRoute::PathKind::kRegex:
        if (!re2::RE2::FullMatch(re2::StringPiece(path.data(), path.size()), *r.path_re)) continue;
        break;
    }
    if (!r.any_host) {
      bool hit = false;
      for (const std::string& h : r.exact_hosts) hit = hit || http::iequals(host, h);
      // The suffix keeps its dot, so "*.example.com" needs at least one label before it.
      for (const std::string& s : r.suffixes)
        hit = hit || (host.size() > s.size() && ends_with_icase(host, s));
      if (!hit) continue;
    }
    bool headers_ok = true;
    for (const CompiledHeader& h : r.headers) {
      bool found = false;
      if (req.headers != nullptr) {
        for (const http::Header& hd : *req.headers) {
          if (!http::iequals(hd.name, h.name)) continue;
          std::string_view v = hd.value;
          switch (h.kind) {
            case CompiledHeader::Kind::kPresent:
              found = true;
              break;
            case CompiledHeader::Kind::kExact:
              found = v == h.value;
              break;
            case CompiledHeader::Kind::kPrefix:
              found = v.substr(0, h.value.size()) == h.value;
              break;
            case CompiledHeader::Kind::kRegex:
              found = re2::RE2::FullMatch(re2::StringPiece(v.data(), v.size()), *h.re);
              break;
          }
          if (found) break;  // any one value is enough
        }
      }
      if (found == h.invert) {
        headers_ok = false;
        break;
      }
    }
    if (headers_ok) return r.index;
  }
  return -1;
}

}  // namespace sy::router
