// An ordered, multi-valued header map with case-insensitive names, used on every request path.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sy::http {

// ASCII lower-casing; header names are stored lower-case so lookups compare bytes.
inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }
bool iequals(std::string_view a, std::string_view b);
std::string to_lower(std::string_view s);

// A response's :status as a number: exactly three digits, 100 to 599; else 0. (A status a
// filter wrote as "200abc" or " 200" is no status.)
int parse_status(std::string_view s);

// Calls FN with each comma-separated item of a list-valued header, trimmed of spaces and tabs.
// Stops early when FN returns true; returns whether it did.
template <typename Fn>
bool for_each_token(std::string_view v, Fn&& fn) {
  while (!v.empty()) {
    size_t comma = v.find(',');
    std::string_view item = v.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty() && fn(item)) return true;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return false;
}

struct Header {
  std::string name;  // lower-case
  std::string value;
};

// Insertion order is kept (it is what goes on the wire). Lookups are linear: a request carries
// a few dozen headers at most, and a vector scan beats any hash map at that size.
class HeaderMap {
 public:
  // NAME must already be lower-case for the fast paths; add() lower-cases for you.
  void add(std::string_view name, std::string_view value);
  // Replaces every value of NAME with one value (appends when absent).
  void set(std::string_view name, std::string_view value);
  // Removes every value of NAME; returns how many were removed.
  size_t remove(std::string_view name);
  // The first value of NAME, or nullptr.
  const std::string* get(std::string_view name) const;
  // Every value of NAME, in order.
  std::vector<std::string_view> get_all(std::string_view name) const;
  bool has(std::string_view name) const { return get(name) != nullptr; }
  // Does the comma-separated list in any NAME header contain TOKEN (case-insensitive)?
  bool has_token(std::string_view name, std::string_view token) const;

  // Moves every header of FROM to the end of this map (all of it at once when this one is
  // empty, which is the common case: no copy, no allocation).
  void append(HeaderMap&& from) {
    if (headers_.empty())
      headers_.swap(from.headers_);
    else
      append_to_some(std::move(from));
  }

  size_t size() const { return headers_.size(); }
  bool empty() const { return headers_.empty(); }
  void clear() { headers_.clear(); }
  // Total bytes of names and values (for limits).
  size_t byte_size() const;

  auto begin() const { return headers_.begin(); }
  auto end() const { return headers_.end(); }
  std::vector<Header>& raw() { return headers_; }
  const std::vector<Header>& raw() const { return headers_; }

 private:
  void append_to_some(HeaderMap&& from);
  std::vector<Header> headers_;
};

}  // namespace sy::http
