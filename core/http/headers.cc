// HeaderMap implementation.
#include "core/http/headers.h"

#include <algorithm>

namespace sy::http {

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

void HeaderMap::add(std::string_view name, std::string_view value) {
  bytes_ += name.size() + value.size();
  if (headers_.size() == headers_.capacity()) {
    // The vector grows, moving every header: NAME or VALUE may view one of them, so the new
    // header is made before that.
    headers_.push_back({to_lower(name), std::string(value)});
    return;
  }
  // Room for it: made in place, with no temporary strings to move and free (the parser adds
  // every header of every message this way).
  Header& h = headers_.emplace_back();
  h.name.assign(name);
  for (char& c : h.name) c = ascii_lower(c);
  h.value.assign(value);
}

// A header whose NAME has no upper-case letter, made in place when there is room (inline: the
// add of set_lowercase too).
[[gnu::always_inline]] inline void HeaderMap::add_lowercase_inline(std::string_view name,
                                                                   std::string_view value) {
  // When the vector must grow, add() makes the header before it moves (lowering a name without
  // upper-case letters changes nothing).
  if (headers_.size() == headers_.capacity()) return add(name, value);
  bytes_ += name.size() + value.size();
  Header& h = headers_.emplace_back();
  h.name.assign(name);
  h.value.assign(value);
}

void HeaderMap::add_lowercase(std::string_view name, std::string_view value) {
  add_lowercase_inline(name, value);
}

// KLOWERCASE: NAME has no upper-case letter (set_lowercase).
template <bool kLowerCase>
void HeaderMap::set_as(std::string_view name, std::string_view value) {
  auto first = headers_.begin(), end = headers_.end();
  while (first != end && !iequals(first->name, name)) ++first;
  if (first == end) {
    if constexpr (kLowerCase)
      add_lowercase_inline(name, value);
    else
      add(name, value);
    return;
  }
  bytes_ = bytes_ - first->value.size() + value.size();
  first->value.assign(value);
  // Later values of NAME go; the others close up behind the first.
  auto out = std::next(first);
  for (auto in = out; in != end; ++in) {
    if (iequals(in->name, name)) {
      bytes_ -= in->name.size() + in->value.size();
      continue;
    }
    if (in != out) *out = std::move(*in);
    ++out;
  }
  headers_.erase(out, end);
}

void HeaderMap::set(std::string_view name, std::string_view value) { set_as<false>(name, value); }
void HeaderMap::set_lowercase(std::string_view name, std::string_view value) {
  set_as<true>(name, value);
}

void HeaderMap::append_to_some(HeaderMap&& from) {
  headers_.reserve(headers_.size() + from.headers_.size());
  for (auto& h : from.headers_) headers_.push_back(std::move(h));
  from.headers_.clear();
}

void HeaderMap::prepend(std::vector<Header>&& headers) {
  for (const auto& h : headers) bytes_ += h.name.size() + h.value.size();
  headers_.insert(headers_.begin(), std::make_move_iterator(headers.begin()),
                  std::make_move_iterator(headers.end()));
  headers.clear();
}

bool HeaderMap::append_to_value(std::string_view name, std::string_view suffix) {
  for (auto& h : headers_) {
    if (!iequals(h.name, name)) continue;
    h.value.append(suffix);
    bytes_ += suffix.size();
    return true;
  }
  return false;
}

size_t HeaderMap::remove(std::string_view name) {
  return erase_if([&](const Header& h) { return iequals(h.name, name); });
}

const std::string* HeaderMap::get(std::string_view name) const {
  for (const auto& h : headers_)
    if (iequals(h.name, name)) return &h.value;
  return nullptr;
}

std::vector<std::string_view> HeaderMap::get_all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& h : headers_)
    if (iequals(h.name, name)) out.emplace_back(h.value);
  return out;
}

bool HeaderMap::has_token(std::string_view name, std::string_view token) const {
  for (const auto& h : headers_) {
    if (iequals(h.name, name) &&
        for_each_token(h.value, [&](std::string_view item) { return iequals(item, token); }))
      return true;
  }
  return false;
}

int parse_status(std::string_view s) {
  if (s.size() != 3) return 0;
  int n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + (c - '0');
  }
  return n >= 100 && n <= 599 ? n : 0;
}

}  // namespace sy::http
