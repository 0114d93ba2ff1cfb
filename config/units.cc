// Parsers for durations, byte sizes and addresses as they are written in the config.
#include "config/units.h"

#include <arpa/inet.h>

#include <limits>

namespace sy::config {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Appends D to *V unless that overflows.
bool push_digit(uint64_t* v, char d) {
  uint64_t digit = uint64_t(d - '0');
  if (*v > (std::numeric_limits<uint64_t>::max() - digit) / 10) return false;
  *v = *v * 10 + digit;
  return true;
}

bool mul_checked(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return false;
  *out = a * b;
  return true;
}

// Nanoseconds per unit; 0 when UNIT is not a duration unit.
uint64_t unit_ns(std::string_view unit) {
  if (unit == "h") return 3'600'000'000'000ULL;
  if (unit == "m") return 60'000'000'000ULL;
  if (unit == "s") return 1'000'000'000ULL;
  if (unit == "ms") return 1'000'000ULL;
  if (unit == "us" || unit == "\xC2\xB5s") return 1'000ULL;  // "µs" in UTF-8
  if (unit == "ns") return 1ULL;
  return 0;
}

constexpr std::string_view kDurationHint = "expected a duration like 1s or 250ms";

}  // namespace

bool parse_uint(std::string_view text, uint64_t* out, std::string* err) {
  if (text.empty()) {
    *err = "expected a non-negative integer";
    return false;
  }
  uint64_t v = 0;
  for (char c : text) {
    if (!is_digit(c)) {
      *err = text[0] == '-' ? "must not be negative" : "expected a non-negative integer";
      return false;
    }
    if (!push_digit(&v, c)) {
      *err = "integer is too large";
      return false;
    }
  }
  *out = v;
  return true;
}

bool parse_duration(std::string_view text, Duration* out, std::string* err) {
  if (text.empty()) {
    *err = std::string(kDurationHint);
    return false;
  }
  // Summing in nanoseconds keeps "1.5s" and "1m30s" exact; only the final step rounds.
  uint64_t total_ns = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    uint64_t whole = 0;
    size_t i = 0;
    for (; i < rest.size() && is_digit(rest[i]); ++i) {
      if (!push_digit(&whole, rest[i])) {
        *err = "duration is too large";
        return false;
      }
    }
    size_t int_digits = i;
    // Nine fraction digits are exact at nanosecond precision; any further non-zero digit adds
    // one nanosecond so that rounding up to milliseconds still sees it.
    uint64_t frac = 0, frac_scale = 1;
    size_t frac_digits = 0;
    bool frac_rest = false;
    if (i < rest.size() && rest[i] == '.') {
      for (++i; i < rest.size() && is_digit(rest[i]); ++i, ++frac_digits) {
        if (frac_digits < 9) {
          frac = frac * 10 + uint64_t(rest[i] - '0');
          frac_scale *= 10;
        } else if (rest[i] != '0') {
          frac_rest = true;
        }
      }
      if (frac_digits == 0) int_digits = 0;  // "1." is malformed
    }
    if (int_digits == 0 && frac_digits == 0) {
      *err = rest[0] == '-' ? "a duration must not be negative" : std::string(kDurationHint);
      return false;
    }
    size_t unit_start = i;
    while (i < rest.size() && !is_digit(rest[i]) && rest[i] != '.') ++i;
    std::string_view unit = rest.substr(unit_start, i - unit_start);
    if (unit.empty()) {
      *err = std::string(kDurationHint) + " (a number needs a unit: h, m, s, ms or us)";
      return false;
    }
    uint64_t per = unit_ns(unit);
    if (per == 0) {
      *err = std::string(kDurationHint) + " (unknown unit '" + std::string(unit) +
             "'; expected h, m, s, ms or us)";
      return false;
    }
    uint64_t part = 0;
    if (!mul_checked(whole, per, &part) || part > std::numeric_limits<uint64_t>::max() - total_ns) {
      *err = "duration is too large";
      return false;
    }
    total_ns += part;
    // A fraction of an hour in nanoseconds can overflow 64 bits before the division.
    uint64_t frac_ns = uint64_t((unsigned __int128)per * frac / frac_scale) + (frac_rest ? 1 : 0);
    if (frac_ns > std::numeric_limits<uint64_t>::max() - total_ns) {
      *err = "duration is too large";
      return false;
    }
    total_ns += frac_ns;
    rest.remove_prefix(i);
  }
  uint64_t ms = total_ns / 1'000'000 + (total_ns % 1'000'000 != 0 ? 1 : 0);
  if (ms > uint64_t(std::numeric_limits<Duration::rep>::max())) {
    *err = "duration is too large";
    return false;
  }
  *out = Duration(Duration::rep(ms));
  return true;
}

bool parse_size(std::string_view text, uint64_t* out, std::string* err) {
  constexpr std::string_view kHint = "expected a size like 65536, 64KiB or 1MiB";
  size_t i = 0;
  uint64_t v = 0;
  for (; i < text.size() && is_digit(text[i]); ++i) {
    if (!push_digit(&v, text[i])) {
      *err = "size is too large";
      return false;
    }
  }
  if (i == 0) {
    *err = !text.empty() && text[0] == '-' ? "a size must not be negative" : std::string(kHint);
    return false;
  }
  std::string_view unit = text.substr(i);
  uint64_t mult = 0;
  if (unit.empty()) {
    mult = 1;
  } else if (unit == "K" || unit == "KiB") {
    mult = 1ULL << 10;
  } else if (unit == "M" || unit == "MiB") {
    mult = 1ULL << 20;
  } else if (unit == "G" || unit == "GiB") {
    mult = 1ULL << 30;
  } else if (unit == "KB" || unit == "MB" || unit == "GB" || unit == "kB") {
    *err = std::string(kHint) + " ('" + std::string(unit) +
           "' is ambiguous; write KiB, MiB or GiB for binary multiples)";
    return false;
  } else {
    *err = std::string(kHint) + " (unknown unit '" + std::string(unit) +
           "'; expected K, KiB, M, MiB, G or GiB)";
    return false;
  }
  if (!mul_checked(v, mult, out)) {
    *err = "size is too large";
    return false;
  }
  return true;
}

bool parse_address(std::string_view text, bool allow_port_zero, Address* out, std::string* err) {
  constexpr std::string_view kHint = "expected an address like 127.0.0.1:8080 or [::1]:8080";
  auto fail = [&](std::string_view why) {
    *err = std::string(kHint) + " (" + std::string(why) + ")";
    return false;
  };
  std::string host;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return fail("missing ']'");
    host = std::string(text.substr(1, close - 1));
    std::string_view after = text.substr(close + 1);
    if (after.empty() || after[0] != ':') return fail("missing port");
    port = after.substr(1);
    in6_addr a6;
    if (inet_pton(AF_INET6, host.c_str(), &a6) != 1)
      return fail("'" + host + "' is not an IPv6 address");
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("missing port");
    host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) return fail("IPv6 addresses need brackets");
    if (host.empty()) return fail("missing host; use 0.0.0.0 for every interface");
    if (host == "localhost") {
      host = "127.0.0.1";
    } else {
      in_addr a4;
      if (inet_pton(AF_INET, host.c_str(), &a4) != 1)
        return fail("host must be a numeric IP address or localhost, not '" + host + "'");
    }
  }
  if (port.empty() || port.size() > 5) return fail("port must be a number from 0 to 65535");
  uint64_t p = 0;
  for (char c : port) {
    if (!is_digit(c)) return fail("port must be a number from 0 to 65535");
    p = p * 10 + uint64_t(c - '0');
  }
  if (p > 65535) return fail("port must be a number from 0 to 65535");
  if (p == 0 && !allow_port_zero) return fail("port 0 is only allowed for listeners");
  out->host = std::move(host);
  out->port = uint16_t(p);
  return true;
}

}  // namespace sy::config
