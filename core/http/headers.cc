// HeaderMap implementation.
#include "core/http/headers.h"

#include <algorithm>

namespace sy::http {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

void HeaderMap::add(std::string_view name, std::string_view value) {
  headers_.push_back({to_lower(name), std::string(value)});
}

void HeaderMap::set(std::string_view name, std::string_view value) {
  bool done = false;
  auto it = std::remove_if(headers_.begin(), headers_.end(), [&](Header& h) {
    if (!iequals(h.name, name)) return false;
    if (done) return true;
    h.value.assign(value);
    done = true;
    return false;
  });
  headers_.erase(it, headers_.end());
  if (!done) add(name, value);
}

void HeaderMap::append_to_some(HeaderMap&& from) {
  headers_.reserve(headers_.size() + from.headers_.size());
  for (auto& h : from.headers_) headers_.push_back(std::move(h));
  from.headers_.clear();
}

size_t HeaderMap::remove(std::string_view name) {
  auto it = std::remove_if(headers_.begin(), headers_.end(),
                           [&](const Header& h) { return iequals(h.name, name); });
  size_t n = size_t(headers_.end() - it);
  headers_.erase(it, headers_.end());
  return n;
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

size_t HeaderMap::byte_size() const {
  size_t n = 0;
  for (const auto& h : headers_) n += h.name.size() + h.value.size();
  return n;
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
