// An ordered, multi-valued header map with case-insensitive names, used on every request path.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sy::http {

// ASCII lower-casing; header names are stored lower-case so lookups compare bytes.
inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }
// Inline so that the common case, names of different lengths, costs a compare and no call:
// every header lookup runs it once per header of the block.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}
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
//
// The map keeps the total bytes of its names and values as it changes, so byte_size() is a
// read, not a walk: the header-limit check runs it on every header_set a filter makes, and
// each writer sizes its buffer with it. That is why nothing outside the map may change a
// header in place (raw() is const; erase_if, prepend and append_to_value do it here).
class HeaderMap {
 public:
  HeaderMap() = default;
  HeaderMap(const HeaderMap&) = default;
  HeaderMap& operator=(const HeaderMap&) = default;
  // A moved-from map is empty, its byte count too.
  HeaderMap(HeaderMap&& o) noexcept
      : headers_(std::move(o.headers_)), bytes_(std::exchange(o.bytes_, 0)) {
    o.headers_.clear();
  }
  HeaderMap& operator=(HeaderMap&& o) noexcept {
    if (this != &o) {
      headers_ = std::move(o.headers_);
      o.headers_.clear();
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }

  // NAME must already be lower-case for the fast paths; add() lower-cases for you.
  void add(std::string_view name, std::string_view value);
  // Replaces every value of NAME with one value, where the first was (appends when absent).
  void set(std::string_view name, std::string_view value);
  // add() and set() for a NAME the caller knows has no upper-case letter (the host table finds
  // that out as it checks a filter's name): it is stored as it is, with no pass to lower it.
  void add_lowercase(std::string_view name, std::string_view value);
  void set_lowercase(std::string_view name, std::string_view value);
  // Removes every value of NAME; returns how many were removed.
  size_t remove(std::string_view name);
  // The first value of NAME, or nullptr.
  const std::string* get(std::string_view name) const;
  // Every value of NAME, in order.
  std::vector<std::string_view> get_all(std::string_view name) const;
  bool has(std::string_view name) const { return get(name) != nullptr; }
  // Does the comma-separated list in any NAME header contain TOKEN (case-insensitive)?
  bool has_token(std::string_view name, std::string_view token) const;
  // Appends SUFFIX to the first value of NAME; false (and nothing changes) when it is absent.
  bool append_to_value(std::string_view name, std::string_view suffix);
  // Removes every header for which PRED(const Header&) is true; returns how many.
  template <typename Pred>
  size_t erase_if(Pred&& pred) {
    size_t before = headers_.size();
    std::erase_if(headers_, [&](const Header& h) {
      if (!pred(h)) return false;
      bytes_ -= h.name.size() + h.value.size();
      return true;
    });
    return before - headers_.size();
  }
  // Puts HEADERS (names lower-case) before every header of this map, in their order.
  void prepend(std::vector<Header>&& headers);

  // Moves every header of FROM to the end of this map (all of it at once when this one is
  // empty, which is the common case: no copy, no allocation).
  void append(HeaderMap&& from) {
    if (headers_.empty())
      headers_.swap(from.headers_);
    else
      append_to_some(std::move(from));
    bytes_ += std::exchange(from.bytes_, 0);
  }

  size_t size() const { return headers_.size(); }
  bool empty() const { return headers_.empty(); }
  // Makes room for N headers at once, so that adding them moves nothing (see the parser).
  void reserve(size_t n) { headers_.reserve(n); }
  void clear() {
    headers_.clear();
    bytes_ = 0;
  }
  // Total bytes of names and values (for limits and buffer sizes).
  size_t byte_size() const { return bytes_; }

  auto begin() const { return headers_.begin(); }
  auto end() const { return headers_.end(); }
  const std::vector<Header>& raw() const { return headers_; }

 private:
  void append_to_some(HeaderMap&& from);
  void add_lowercase_inline(std::string_view name, std::string_view value);
  template <bool kLowerCase>
  void set_as(std::string_view name, std::string_view value);
  std::vector<Header> headers_;
  size_t bytes_ = 0;  // the sum of every name's and value's size
};

}  // namespace sy::http
