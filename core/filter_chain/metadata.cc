// Typed metadata: a strict JSON object reader for metadata_ns_set/merge, the namespace writer
// for metadata_ns_get, config metadata, and typed attribute reads.
#include "core/filter_chain/metadata.h"

#include <charconv>
#include <cstring>

#include "config/json_text.h"
#include "core/filter_chain/chain.h"

namespace sy::filters {
namespace {

std::string_view sv(sy_str_t s) { return {s.ptr ? s.ptr : "", s.len}; }

// A recursive-descent reader over one JSON text. Values are checked, not built: the caller
// keeps their text. Strings are decoded when asked for (member names and string members).
class JsonReader {
 public:
  explicit JsonReader(std::string_view t) : t_(t) {}

  bool at_end() {
    skip_ws();
    return i_ == t_.size();
  }
  void skip_ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r'))
      ++i_;
  }
  bool eat(char c) {
    skip_ws();
    if (i_ < t_.size() && t_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  size_t pos() const { return i_; }
  std::string_view slice(size_t from, size_t to) const { return t_.substr(from, to - from); }
  bool peek_string() {
    skip_ws();
    return i_ < t_.size() && t_[i_] == '"';
  }

  // A string at the cursor, decoded into *OUT (may be null to only check it).
  bool string(std::string* out) {
    if (!eat('"')) return false;
    while (i_ < t_.size()) {
      unsigned char c = static_cast<unsigned char>(t_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (!escape(out)) return false;
        continue;
      }
      size_t n = json::utf8_len(t_.substr(i_));
      if (n == 0) return false;
      if (out) out->append(t_.substr(i_, n));
      i_ += n;
    }
    return false;
  }

  bool value(int depth) {
    if (depth > 64) return false;
    skip_ws();
    if (i_ >= t_.size()) return false;
    char c = t_[i_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') return string(nullptr);
    if (c == 't') return word("true");
    if (c == 'f') return word("false");
    if (c == 'n') return word("null");
    return number();
  }

 private:
  bool object(int depth) {
    eat('{');
    if (eat('}')) return true;
    do {
      if (!string(nullptr) || !eat(':') || !value(depth + 1)) return false;
    } while (eat(','));
    return eat('}');
  }
  bool array(int depth) {
    eat('[');
    if (eat(']')) return true;
    do {
      if (!value(depth + 1)) return false;
    } while (eat(','));
    return eat(']');
  }
  bool word(std::string_view w) {
    if (t_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  bool digits() {
    size_t start = i_;
    while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') ++i_;
    return i_ > start;
  }
  bool number() {
    if (i_ < t_.size() && t_[i_] == '-') ++i_;
    if (i_ < t_.size() && t_[i_] == '0')
      ++i_;  // no leading zeros
    else if (!digits())
      return false;
    if (i_ < t_.size() && t_[i_] == '.' && (++i_, !digits())) return false;
    if (i_ < t_.size() && (t_[i_] == 'e' || t_[i_] == 'E')) {
      ++i_;
      if (i_ < t_.size() && (t_[i_] == '+' || t_[i_] == '-')) ++i_;
      if (!digits()) return false;
    }
    return true;
  }
  bool hex4(uint32_t* v) {
    if (i_ + 4 > t_.size()) return false;
    auto r = std::from_chars(t_.data() + i_, t_.data() + i_ + 4, *v, 16);
    if (r.ptr != t_.data() + i_ + 4) return false;
    i_ += 4;
    return true;
  }
  bool escape(std::string* out) {
    ++i_;  // the backslash
    if (i_ >= t_.size()) return false;
    char e = t_[i_++];
    static const char kEscapes[] = "\"\\/bfnrt";
    static const char kDecoded[] = "\"\\/\b\f\n\r\t";
    if (e != 'u') {
      const char* simple = e ? strchr(kEscapes, e) : nullptr;
      if (!simple) return false;
      if (out) out->push_back(kDecoded[simple - kEscapes]);
      return true;
    }
    uint32_t cp = 0;
    if (!hex4(&cp)) return false;
    if (cp >= 0xdc00 && cp <= 0xdfff) return false;  // a low surrogate alone
    if (cp >= 0xd800 && cp <= 0xdbff) {
      uint32_t low = 0;
      if (t_.substr(i_, 2) != "\\u") return false;
      i_ += 2;
      if (!hex4(&low) || low < 0xdc00 || low > 0xdfff) return false;
      cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
    }
    if (out) append_utf8(out, cp);
    return true;
  }
  static void append_utf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(char(cp));
    } else if (cp < 0x800) {
      out->push_back(char(0xc0 | (cp >> 6)));
      out->push_back(char(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(char(0xe0 | (cp >> 12)));
      out->push_back(char(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(char(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(char(0xf0 | (cp >> 18)));
      out->push_back(char(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(char(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(char(0x80 | (cp & 0x3f)));
    }
  }

  std::string_view t_;
  size_t i_ = 0;
};

// The namespace a stream's source names: dynamic metadata, or a config block as JSON text.
thread_local std::string t_ns_out;

sy_status_t h_metadata_ns_store(sy_stream_t* s, sy_str_t ns, sy_str_t object, bool merge) {
  if (!s || ns.len == 0) return SY_ERR_INVALID;
  MetadataNamespace members;
  if (!parse_json_object(sv(object), &members)) return SY_ERR_INVALID;
  MetadataNamespace& target = FilterChain::from(s)->metadata[std::string(sv(ns))];
  if (!merge) target.clear();
  for (auto& [k, v] : members) target[k] = std::move(v);
  return SY_OK;
}

sy_status_t h_metadata_ns_set(sy_stream_t* s, sy_str_t ns, sy_str_t object) {
  return h_metadata_ns_store(s, ns, object, false);
}

sy_status_t h_metadata_ns_merge(sy_stream_t* s, sy_str_t ns, sy_str_t object) {
  return h_metadata_ns_store(s, ns, object, true);
}

sy_status_t h_metadata_ns_get(sy_stream_t* s, sy_metadata_source_t source, sy_str_t ns,
                              sy_str_t* out) {
  if (!s || !out) return SY_ERR_INVALID;
  FilterChain* chain = FilterChain::from(s);
  if (source == SY_METADATA_DYNAMIC) {
    auto it = chain->metadata.find(std::string(sv(ns)));
    if (it == chain->metadata.end()) return SY_ERR_NOT_FOUND;
    t_ns_out = namespace_json(it->second);
    *out = {t_ns_out.data(), t_ns_out.size()};
    return SY_OK;
  }
  if (source < SY_METADATA_ROUTE || source > SY_METADATA_CLUSTER) return SY_ERR_INVALID;
  const std::map<std::string, std::string>* md = chain->sink()->config_metadata(source);
  if (!md) return SY_ERR_NOT_FOUND;
  auto it = md->find(std::string(sv(ns)));
  if (it == md->end()) return SY_ERR_NOT_FOUND;
  *out = {it->second.data(), it->second.size()};  // the config outlives the stream
  return SY_OK;
}

// Attribute types other than STRING, by path.
sy_value_type_t attribute_type(std::string_view path) {
  static const std::map<std::string_view, sy_value_type_t> kTypes = {
      {"request.time", SY_VALUE_TIMESTAMP},
      {"request.duration", SY_VALUE_DURATION},
      {"request.size", SY_VALUE_INT},
      {"request.total_size", SY_VALUE_INT},
      {"response.code", SY_VALUE_INT},
      {"response.size", SY_VALUE_INT},
      {"response.total_size", SY_VALUE_INT},
      {"source.port", SY_VALUE_INT},
      {"destination.port", SY_VALUE_INT},
      {"upstream.port", SY_VALUE_INT},
      {"connection.id", SY_VALUE_INT},
      {"connection.mtls", SY_VALUE_BOOL},
      {"listener.limits.headers", SY_VALUE_INT},
  };
  auto it = kTypes.find(path);
  return it == kTypes.end() ? SY_VALUE_STRING : it->second;
}

thread_local std::string t_typed;

sy_status_t h_attribute_get_typed(sy_stream_t* s, sy_str_t path, sy_value_t* out) {
  if (!s || !out || !SY_HAS_SLOT(out, sy_value_t, bytes)) return SY_ERR_INVALID;
  if (!FilterChain::from(s)->attribute(sv(path), &t_typed)) return SY_ERR_NOT_FOUND;
  sy_value_type_t type = attribute_type(sv(path));
  out->type = type;
  out->number = 0;
  out->bytes = {nullptr, 0};
  if (type == SY_VALUE_STRING) {
    out->bytes = {t_typed.data(), t_typed.size()};
    return SY_OK;
  }
  if (type == SY_VALUE_BOOL) {
    out->number = t_typed == "true" ? 1 : 0;
    return SY_OK;
  }
  // The text forms are decimal: milliseconds for the time and the duration.
  int64_t n = 0;
  auto r = std::from_chars(t_typed.data(), t_typed.data() + t_typed.size(), n);
  if (r.ec != std::errc() || r.ptr != t_typed.data() + t_typed.size()) return SY_ERR_INTERNAL;
  out->number = (type == SY_VALUE_TIMESTAMP || type == SY_VALUE_DURATION) ? n * 1000000 : n;
  return SY_OK;
}

uint64_t h_buffer_limit(sy_stream_t* s) {
  return s ? FilterChain::from(s)->sink()->buffer_limit() : 0;
}

sy_status_t h_continue_headers_with_body(sy_stream_t* s, sy_direction_t dir) {
  if (!s || (dir != SY_REQUEST && dir != SY_RESPONSE)) return SY_ERR_INVALID;
  return FilterChain::from(s)->continue_headers_with_body(dir);
}

sy_status_t h_continue_headers_take_body(sy_stream_t* s, sy_direction_t dir) {
  if (!s || (dir != SY_REQUEST && dir != SY_RESPONSE)) return SY_ERR_INVALID;
  return FilterChain::from(s)->continue_headers_take_body(dir);
}

sy_status_t h_module_config(sy_module_t* module, sy_str_t* out) {
  if (!module || !out) return SY_ERR_INVALID;
  const std::string& json = ModuleScope::from(module)->config_json;  // set before the entry
  *out = {json.data(), json.size()};
  return SY_OK;
}

}  // namespace

bool parse_json_object(std::string_view text, MetadataNamespace* out) {
  JsonReader r(text);
  MetadataNamespace members;
  if (!r.eat('{')) return false;
  if (!r.eat('}')) {
    do {
      std::string key;
      if (!r.string(&key) || !r.eat(':') || members.count(key)) return false;
      MetadataValue v;
      if (r.peek_string()) {
        if (!r.string(&v.text)) return false;
      } else {
        r.skip_ws();
        size_t start = r.pos();
        if (!r.value(1)) return false;
        v.text = std::string(r.slice(start, r.pos()));
        v.json = true;
      }
      members.emplace(std::move(key), std::move(v));
    } while (r.eat(','));
    if (!r.eat('}')) return false;
  }
  if (!r.at_end()) return false;
  *out = std::move(members);
  return true;
}

std::string namespace_json(const MetadataNamespace& ns) {
  std::string out;
  json::Writer w(out);
  w.begin_object();
  for (const auto& [k, v] : ns) {
    w.key(k);
    if (v.json)
      w.raw(v.text);
    else
      w.value(v.text);
  }
  w.end_object();
  return out;
}

void install_metadata_slots(sy_host_t* h) {
  h->metadata_ns_set = h_metadata_ns_set;
  h->metadata_ns_merge = h_metadata_ns_merge;
  h->metadata_ns_get = h_metadata_ns_get;
  h->attribute_get_typed = h_attribute_get_typed;
  h->buffer_limit = h_buffer_limit;
  h->continue_headers_with_body = h_continue_headers_with_body;
  h->continue_headers_take_body = h_continue_headers_take_body;
  h->module_config = h_module_config;
}

bool dynamic_metadata_json(const FilterChain& chain, std::string_view ns_key, std::string* out) {
  size_t colon = ns_key.find(':');
  auto ns = chain.metadata.find(std::string(ns_key.substr(0, colon)));
  if (ns == chain.metadata.end()) return false;
  if (colon == std::string_view::npos) {
    *out = namespace_json(ns->second);
    return true;
  }
  auto it = ns->second.find(std::string(ns_key.substr(colon + 1)));
  if (it == ns->second.end()) return false;
  *out = it->second.json ? it->second.text : json::quoted(it->second.text);
  return true;
}

bool filter_state_text(const FilterChain& chain, std::string_view key, std::string* out) {
  auto it = chain.filter_state.find(std::string(key));
  if (it == chain.filter_state.end()) return false;
  *out = it->second;
  return true;
}

}  // namespace sy::filters
