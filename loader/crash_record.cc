// The crash record's format: written from a signal handler, read at the next start.
#include "loader/crash_record.h"

#include <signal.h>

#include <cctype>
#include <fstream>
#include <sstream>

#include "config/json_text.h"

namespace sy::loader {
namespace {

constexpr std::string_view kFirstLine = "switchyard crash record 1";

// Appends to a fixed buffer; past its end it only remembers that it overflowed.
struct Out {
  char* buf;
  size_t cap;
  size_t len = 0;
  bool overflow = false;
  void put(char c) {
    if (len < cap)
      buf[len++] = c;
    else
      overflow = true;
  }
  // Control characters would break the line format: a module name can hold any byte.
  void text(const char* s) {
    for (; s && *s; ++s) put(static_cast<unsigned char>(*s) < 0x20 ? '?' : *s);
  }
  void number(uint64_t v) {
    char digits[20];
    int n = 0;
    do {
      digits[n++] = char('0' + v % 10);
      v /= 10;
    } while (v);
    while (n) put(digits[--n]);
  }
  void signed_number(int64_t v) {
    if (v < 0) {
      put('-');
      number(uint64_t(0) - uint64_t(v));
    } else {
      number(uint64_t(v));
    }
  }
  void line(const char* key, const char* value) {
    text(key);
    put('=');
    text(value);
    put('\n');
  }
};

bool is_sha256(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c)) ||
        std::isupper(static_cast<unsigned char>(c)))
      return false;
  return true;
}

bool to_u64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + uint64_t(c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

const char* signal_name(int sig) {
  switch (sig) {
    case SIGSEGV:
      return "SIGSEGV";
    case SIGBUS:
      return "SIGBUS";
    case SIGABRT:
      return "SIGABRT";
    case SIGFPE:
      return "SIGFPE";
    case SIGILL:
      return "SIGILL";
    default:
      return "signal";
  }
}

size_t format_utc(char* buf, time_t t) {
  // gmtime_r is not async-signal-safe, so the civil date is computed here (Howard Hinnant's
  // days-to-civil algorithm, proleptic Gregorian calendar).
  int64_t secs = int64_t(t);
  int64_t days = secs / 86400, rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  days += 719468;
  int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  int64_t doe = days - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t year = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t day = doy - (153 * mp + 2) / 5 + 1;
  int64_t month = mp < 10 ? mp + 3 : mp - 9;
  if (month <= 2) ++year;
  int64_t fields[] = {year, month, day, rem / 3600, rem / 60 % 60, rem % 60};
  const char seps[] = {'-', '-', 'T', ':', ':', 'Z'};
  size_t n = 0;
  for (int i = 0; i < 6; ++i) {
    int width = i == 0 ? 4 : 2;
    int64_t v = fields[i] < 0 ? 0 : fields[i];
    for (int k = width - 1; k >= 0; --k) {
      buf[n + size_t(k)] = char('0' + v % 10);
      v /= 10;
    }
    n += size_t(width);
    buf[n++] = seps[i];
  }
  buf[n] = '\0';
  return n;
}

size_t format_crash_record(char* buf, size_t cap, const CrashFacts& f) {
  Out o{buf, cap};
  for (char c : kFirstLine) o.put(c);
  o.put('\n');
  o.line("module", f.module);
  o.line("sha256", f.sha256);
  o.text("generation=");
  o.number(f.generation);
  o.put('\n');
  o.line("callback", f.callback);
  o.text("signal=");
  o.signed_number(f.signal);
  o.put('\n');
  o.line("signal_name", signal_name(f.signal));
  char when[32];
  format_utc(when, f.time);
  o.line("time", when);
  o.text("pid=");
  o.signed_number(f.pid);
  o.put('\n');
  return o.overflow ? 0 : o.len;
}

bool parse_crash_record(std::string_view text, CrashRecord* out, std::string* error) {
  size_t eol = text.find('\n');
  if (text.substr(0, eol) != kFirstLine) {
    *error = "not a crash record: the first line is not '" + std::string(kFirstLine) + "'";
    return false;
  }
  CrashRecord r;
  bool have_generation = false, have_signal = false;
  for (size_t pos = eol == std::string_view::npos ? text.size() : eol + 1; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      *error = "malformed line '" + std::string(line) + "' (expected key=value)";
      return false;
    }
    std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
    uint64_t n = 0;
    if (key == "module") {
      r.module = value;
    } else if (key == "sha256") {
      r.sha256 = value;
    } else if (key == "callback") {
      r.callback = value;
    } else if (key == "signal_name") {
      r.signal_name = value;
    } else if (key == "time") {
      r.time = value;
    } else if (key == "generation") {
      if (!to_u64(value, &n)) {
        *error = "generation is not a number: '" + std::string(value) + "'";
        return false;
      }
      r.generation = n;
      have_generation = true;
    } else if (key == "signal") {
      if (!to_u64(value, &n) || n == 0 || n > 64) {
        *error = "signal is not a signal number: '" + std::string(value) + "'";
        return false;
      }
      r.signal = int(n);
      have_signal = true;
    } else if (key == "pid") {
      if (!to_u64(value, &n)) {
        *error = "pid is not a number: '" + std::string(value) + "'";
        return false;
      }
      r.pid = int64_t(n);
    }
  }
  if (r.module.empty() || !have_generation || !have_signal || r.callback.empty()) {
    *error = "incomplete crash record: module, generation, callback and signal are required";
    return false;
  }
  if (!is_sha256(r.sha256)) {
    *error = "sha256 is not 64 lower-case hexadecimal digits: '" + r.sha256 + "'";
    return false;
  }
  *out = std::move(r);
  return true;
}

bool read_crash_record(const std::string& file, CrashRecord* out, std::string* error) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    *error = file + ": cannot read the crash record";
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string why;
  if (!parse_crash_record(text.str(), out, &why)) {
    *error = file + ": " + why;
    return false;
  }
  out->path = file;
  return true;
}

std::string crash_record_json(const CrashRecord& r) {
  return "{\"when\":" + json::quoted(r.time) + ",\"signal\":" + std::to_string(r.signal) +
         ",\"signal_name\":" + json::quoted(r.signal_name) +
         ",\"generation\":" + std::to_string(r.generation) +
         ",\"sha256\":" + json::quoted(r.sha256) + ",\"callback\":" + json::quoted(r.callback) +
         ",\"pid\":" + std::to_string(r.pid) + ",\"record\":" + json::quoted(r.path) + "}";
}

}  // namespace sy::loader
