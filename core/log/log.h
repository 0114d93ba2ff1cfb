// Leveled process log on stderr: one line per event, with time, level and thread.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace sy::log {

enum class Level { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };

Level level();
void set_level(Level l);
// "trace" | "debug" | "info" | "warn" | "error" | "off"; false when NAME is none of those.
bool parse_level(std::string_view name, Level* out);
void write(Level l, std::string_view msg);

template <typename... Args>
std::string format(const char* fmt, Args... args) {
  int n = std::snprintf(nullptr, 0, fmt, args...);
  std::string out(size_t(n > 0 ? n : 0), '\0');
  std::snprintf(out.data(), out.size() + 1, fmt, args...);
  return out;
}

}  // namespace sy::log

// printf-style macros: the level check comes first so a disabled line costs one compare.
#define SY_LOG(lvl, ...)                                                                      \
  do {                                                                                        \
    if (::sy::log::level() <= (lvl)) ::sy::log::write((lvl), ::sy::log::format(__VA_ARGS__)); \
  } while (0)
#define SY_DEBUG(...) SY_LOG(::sy::log::Level::kDebug, __VA_ARGS__)
#define SY_INFO(...) SY_LOG(::sy::log::Level::kInfo, __VA_ARGS__)
#define SY_WARN(...) SY_LOG(::sy::log::Level::kWarn, __VA_ARGS__)
#define SY_ERROR(...) SY_LOG(::sy::log::Level::kError, __VA_ARGS__)
