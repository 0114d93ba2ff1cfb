#include "decision.h"

#include <envoy/service/auth/v3/external_auth.pb.h>

#include <cctype>

#include "struct_json.h"

namespace ext_authz {

namespace {

using envoy::config::core::v3::HeaderValueOption;

// Envoy's ext_authz reads `value`; a server that only fills raw_value is accepted too.
std::string option_value(const HeaderValueOption& o) {
  return o.header().value().empty() ? o.header().raw_value() : o.header().value();
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

HeaderOp to_op(const HeaderValueOption& o, HeaderOp::Action append_true) {
  HeaderOp op{lower(o.header().key()), option_value(o), HeaderOp::kSet};
  if (o.has_append()) {
    op.action = o.append().value() ? append_true : HeaderOp::kSet;
    return op;
  }
  switch (o.append_action()) {
    case HeaderValueOption::ADD_IF_ABSENT:
      op.action = HeaderOp::kAddIfAbsent;
      break;
    case HeaderValueOption::OVERWRITE_IF_EXISTS:
      op.action = HeaderOp::kOverwriteIfExists;
      break;
    default:
      op.action = HeaderOp::kSet;
      break;
  }
  return op;
}

// A local reply's headers: an entry that does not append replaces the ones before it.
void reply_headers(const google::protobuf::RepeatedPtrField<HeaderValueOption>& in, Decision* d) {
  for (const HeaderValueOption& o : in) {
    HeaderOp op = to_op(o, HeaderOp::kAdd);
    if (op.name.empty()) continue;
    bool exists = false;
    for (const auto& [n, _] : d->reply_headers) exists = exists || n == op.name;
    if (op.action == HeaderOp::kAddIfAbsent && exists) continue;
    if (op.action == HeaderOp::kOverwriteIfExists && !exists) continue;
    if (op.action != HeaderOp::kAdd)
      std::erase_if(d->reply_headers, [&](const auto& h) { return h.first == op.name; });
    d->reply_headers.emplace_back(op.name, op.value);
  }
}

void take_metadata(const google::protobuf::Struct& s, Decision* d) {
  if (s.fields().empty()) return;
  google::protobuf::Value v;
  *v.mutable_struct_value() = s;
  value_to_json(v, &d->metadata);
}

bool header_ops_valid(const std::vector<HeaderOp>& ops) {
  for (const HeaderOp& op : ops)
    if (!valid_header_name(op.name) || !valid_header_value(op.value)) return false;
  return true;
}

}  // namespace

bool valid_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name)
    if (!(std::isalnum(c) ||
          std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos))
      return false;
  return true;
}

bool valid_header_value(std::string_view value) {
  for (unsigned char c : value)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

Decision error_decision(std::string why) {
  Decision d;
  d.kind = Decision::kError;
  d.why = std::move(why);
  return d;
}

Decision from_check_response(const Config& cfg, std::string_view message) {
  envoy::service::auth::v3::CheckResponse r;
  if (!r.ParseFromArray(message.data(), int(message.size())))
    return error_decision("malformed CheckResponse");
  Decision d;
  if (cfg.enable_dynamic_metadata_ingestion) {
    // The deprecated ok_response.dynamic_metadata replaces the top-level one when set.
    if (r.has_ok_response() && r.ok_response().has_dynamic_metadata())
      take_metadata(r.ok_response().dynamic_metadata(), &d);
    else if (r.has_dynamic_metadata())
      take_metadata(r.dynamic_metadata(), &d);
  }
  if (r.has_error_response()) {
    d.kind = Decision::kError;
    d.why = "the server answered error_response";
    d.status = uint32_t(r.error_response().status().code());
    reply_headers(r.error_response().headers(), &d);
    d.body = r.error_response().body();
    return d;
  }
  if (r.status().code() != 0) {
    d.kind = Decision::kDenied;
    if (r.has_denied_response()) {
      d.status = uint32_t(r.denied_response().status().code());
      reply_headers(r.denied_response().headers(), &d);
      d.body = r.denied_response().body();
    }
    return d;
  }
  d.kind = Decision::kOk;
  if (!r.has_ok_response()) return d;
  const auto& ok = r.ok_response();
  for (const HeaderValueOption& o : ok.headers())
    d.request_headers.push_back(to_op(o, HeaderOp::kAppend));
  for (const std::string& n : ok.headers_to_remove()) d.headers_to_remove.push_back(lower(n));
  for (const HeaderValueOption& o : ok.response_headers_to_add())
    d.response_headers.push_back(to_op(o, HeaderOp::kAdd));
  for (const auto& q : ok.query_parameters_to_set()) d.query_set.emplace_back(q.key(), q.value());
  for (const std::string& k : ok.query_parameters_to_remove()) d.query_remove.push_back(k);
  if (cfg.validate_mutations) {
    bool queries_ok = true;
    for (const auto& [k, v] : d.query_set)
      queries_ok = queries_ok && !k.empty() && valid_header_value(k) && valid_header_value(v);
    d.invalid = !header_ops_valid(d.request_headers) || !header_ops_valid(d.response_headers) ||
                !queries_ok;
  }
  return d;
}

Decision from_http_response(const Config& cfg, uint32_t status, const sy_header_t* headers,
                            size_t count, std::string body) {
  Decision d;
  auto name_of = [&](size_t i) { return lower({headers[i].name.ptr, headers[i].name.len}); };
  auto value_of = [&](size_t i) { return std::string(headers[i].value.ptr, headers[i].value.len); };
  if (status == 200) {
    d.kind = Decision::kOk;
    for (size_t i = 0; i < count; ++i) {
      std::string n = name_of(i);
      if (n.empty() || n[0] == ':') continue;
      if (n == "x-envoy-auth-headers-to-remove") {
        std::string_view list = headers[i].value.ptr
                                    ? std::string_view(headers[i].value.ptr, headers[i].value.len)
                                    : "";
        while (!list.empty()) {
          size_t comma = list.find(',');
          std::string_view item = list.substr(0, comma);
          while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
          while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
          if (!item.empty()) d.headers_to_remove.push_back(lower(item));
          if (comma == std::string_view::npos) break;
          list.remove_prefix(comma + 1);
        }
        continue;
      }
      if (cfg.allowed_upstream_headers.match(n))
        d.request_headers.push_back({n, value_of(i), HeaderOp::kSet});
      if (cfg.allowed_upstream_headers_to_append.match(n))
        d.request_headers.push_back({n, value_of(i), HeaderOp::kAdd});
      if (cfg.allowed_client_headers_on_success.match(n))
        d.response_headers.push_back({n, value_of(i), HeaderOp::kAdd});
    }
    // Several entries of one allowed upstream header arrive as several kSet ops: the first
    // replaces, the rest add, so none is lost.
    for (size_t i = 0; i < d.request_headers.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (d.request_headers[j].name == d.request_headers[i].name &&
            d.request_headers[i].action == HeaderOp::kSet)
          d.request_headers[i].action = HeaderOp::kAdd;
    return d;
  }
  if (status >= 500 || status < 200) {
    d.why = "the authorization server answered " + std::to_string(status);
    return d;  // kError
  }
  d.kind = Decision::kDenied;
  d.status = status;
  d.body = std::move(body);
  bool all = cfg.allowed_client_headers.patterns.empty();
  for (size_t i = 0; i < count; ++i) {
    std::string n = name_of(i);
    if (n.empty() || n[0] == ':' || n == "content-length" || n == "transfer-encoding" ||
        n == "connection" || n == "keep-alive")
      continue;
    bool pass =
        all ? n != "host"
            : (cfg.allowed_client_headers.match(n) || n == "www-authenticate" || n == "location");
    if (pass) d.reply_headers.emplace_back(n, value_of(i));
  }
  return d;
}

}  // namespace ext_authz
