// Parsers for the unit-bearing scalars of the config: durations, byte sizes and addresses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"

namespace sy::config {

// Each parser returns false and sets *ERR to a message saying what was expected when TEXT is
// not acceptable; *OUT is only written on success. They know nothing about YAML, so they can be
// tested (and fuzzed) on plain strings.

// A non-negative decimal integer without sign or unit ("0", "65536").
bool parse_uint(std::string_view text, uint64_t* out, std::string* err);

// "1s", "500ms", "2m", "1h", "250us", "1.5s", "1m30s". Sub-millisecond values round up, so a
// timeout that was asked for is never shortened to zero. A bare number is rejected: the unit is
// what the reader of the file cannot guess.
bool parse_duration(std::string_view text, Duration* out, std::string* err);

// Bytes: "65536", "64K", "64KiB", "1M", "1MiB", "2G", "2GiB" (all binary multiples). "KB", "MB"
// and "GB" are rejected because half the world reads them as powers of ten.
bool parse_size(std::string_view text, uint64_t* out, std::string* err);

// "host:port" or "[ipv6]:port". The host must be a numeric IPv4 or IPv6 address, or "localhost"
// (stored as 127.0.0.1): the config never waits on DNS. Port 0 is accepted only when
// ALLOW_PORT_ZERO (a listener asking the OS to pick).
bool parse_address(std::string_view text, bool allow_port_zero, Address* out, std::string* err);

}  // namespace sy::config
