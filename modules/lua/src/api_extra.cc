// handle:stats() (Envoy's custom metrics) and handle:sharedDict() (a dictionary shared by all
// workers, with TTLs).
#include <time.h>

#include <cmath>
#include <cstring>
#include <string>

#include "dict_store.h"
#include "objects.h"

namespace sylua {
namespace {

// ---- stats ------------------------------------------------------------------------------

struct MetricArgs {
  Dir* d;
  std::string name;
};

uint32_t metric_id(lua_State* L, Dir& d, sy_metric_kind_t kind, std::string_view name) {
  std::string full = d.st->cfg->stats.prefix + std::string(name);
  std::string key = std::to_string(int(kind)) + ":" + full;
  auto& cache = d.st->vm->custom_metrics;
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  uint32_t id = 0;
  if (g_host->metric_define(g_module, kind, S(full), nullptr, 0, &id) != SY_OK) return UINT32_MAX;
  cache.emplace(std::move(key), id);
  (void)L;
  return id;
}

int st_metric(lua_State* L, sy_metric_kind_t kind) {
  Dir& d = live(L, check(L, 1, kStats));
  size_t n = 0;
  const char* name = luaL_checklstring(L, 2, &n);
  if (n == 0) raise(L, "a metric needs a name");
  if (kind == SY_HISTOGRAM && !lua_isnoneornil(L, 3)) {
    const char* unit = luaL_checkstring(L, 3);
    if (std::strcmp(unit, "ms") && std::strcmp(unit, "milliseconds") &&
        std::strcmp(unit, "microseconds") && std::strcmp(unit, "bytes") &&
        std::strcmp(unit, "unspecified"))
      raise(L, "unknown histogram unit '%s'", unit);
  }
  uint32_t id = metric_id(L, d, kind, {name, n});
  if (id == UINT32_MAX) raise(L, "metric '%s' exists with another type", name);
  Obj* o = new_obj(L, nullptr, kMetric);
  o->kind = kind;
  o->id = id;
  return 1;
}

int st_counter(lua_State* L) { return st_metric(L, SY_COUNTER); }
int st_gauge(lua_State* L) { return st_metric(L, SY_GAUGE); }
int st_histogram(lua_State* L) { return st_metric(L, SY_HISTOGRAM); }

Obj* metric(lua_State* L, sy_metric_kind_t want, const char* method) {
  Obj* o = check(L, 1, kMetric);
  if (o->kind != want) raise(L, "%s() is not a method of this metric", method);
  return o;
}

// Envoy's messages: "counter add amount must be non-negative", ...
lua_Integer amount(lua_State* L, int i, const char* what) {
  lua_Integer v = luaL_checkinteger(L, i);
  if (v < 0) raise(L, "%s must be non-negative", what);
  return v;
}

int m_inc(lua_State* L) {
  Obj* o = check(L, 1, kMetric);
  if (o->kind == SY_HISTOGRAM) raise(L, "inc() is not a method of a histogram");
  g_host->metric_add(g_module, o->id, 1);
  return 0;
}
int m_add(lua_State* L) {
  Obj* o = check(L, 1, kMetric);
  if (o->kind == SY_HISTOGRAM) raise(L, "add() is not a method of a histogram");
  g_host->metric_add(
      g_module, o->id,
      amount(L, 2, o->kind == SY_COUNTER ? "counter add amount" : "gauge add amount"));
  return 0;
}
int m_dec(lua_State* L) {
  Obj* o = metric(L, SY_GAUGE, "dec");
  g_host->metric_add(g_module, o->id, -1);
  return 0;
}
int m_sub(lua_State* L) {
  Obj* o = metric(L, SY_GAUGE, "sub");
  g_host->metric_add(g_module, o->id, -amount(L, 2, "gauge sub amount"));
  return 0;
}
int m_set(lua_State* L) {
  Obj* o = metric(L, SY_GAUGE, "set");
  g_host->metric_set(g_module, o->id, amount(L, 2, "gauge set value"));
  return 0;
}
int m_value(lua_State* L) {
  Obj* o = check(L, 1, kMetric);
  int64_t v = 0;
  g_host->metric_get(g_module, o->id, &v);
  lua_pushinteger(L, v);
  return 1;
}
int m_record(lua_State* L) {
  Obj* o = metric(L, SY_HISTOGRAM, "recordValue");
  g_host->metric_record(g_module, o->id, uint64_t(amount(L, 2, "histogram value")));
  return 0;
}

// ---- shared dictionaries ----------------------------------------------------------------

// Process-wide: every worker's Lua states see the same dictionaries. Values are scalars; a
// TTL makes a key disappear (checked on access, and swept as dictionaries grow). The
// dictionaries live in a DictStore (dict_store.h) that outlives a generation of this module.
int64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool expired(const Entry& e, int64_t now) { return e.expires_ms && e.expires_ms <= now; }

void sweep(Dict& d, int64_t now) {
  if (d.map.size() < d.next_sweep) return;
  for (auto it = d.map.begin(); it != d.map.end();)
    it = expired(it->second, now) ? d.map.erase(it) : std::next(it);
  d.next_sweep = std::max<size_t>(1024, d.map.size() * 2);
}

Dict* check_dict(lua_State* L) {
  check(L, 1, kDict);
  lua_getiuservalue(L, 1, 1);
  auto* d = static_cast<Dict*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return d;
}

int64_t ttl_arg(lua_State* L, int i) {
  if (lua_isnoneornil(L, i)) return 0;
  lua_Number s = luaL_checknumber(L, i);
  if (s < 0) raise(L, "ttl must be >= 0 seconds");
  return s == 0 ? 0 : now_ms() + int64_t(std::ceil(s * 1000));
}

void push_entry(lua_State* L, const Entry& e) {
  if (auto* s = std::get_if<std::string>(&e.v))
    lua_pushlstring(L, s->data(), s->size());
  else if (auto* i = std::get_if<lua_Integer>(&e.v))
    lua_pushinteger(L, *i);
  else if (auto* n = std::get_if<double>(&e.v))
    lua_pushnumber(L, *n);
  else
    lua_pushboolean(L, std::get<bool>(e.v));
}

int d_get(lua_State* L) {
  Dict* d = check_dict(L);
  size_t n;
  const char* k = luaL_checklstring(L, 2, &n);
  std::lock_guard<std::mutex> lock(d->mu);
  auto it = d->map.find(std::string(k, n));
  if (it == d->map.end() || expired(it->second, now_ms())) return lua_pushnil(L), 1;
  push_entry(L, it->second);
  return 1;
}

int d_set(lua_State* L) {
  Dict* d = check_dict(L);
  size_t n;
  const char* k = luaL_checklstring(L, 2, &n);
  int t = lua_type(L, 3);
  if (t != LUA_TNIL && t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN)
    raise(L, "sharedDict values are strings, numbers or booleans (got %s)", luaL_typename(L, 3));
  int64_t exp = ttl_arg(L, 4);
  Entry e;
  e.expires_ms = exp;
  if (t == LUA_TSTRING) {
    size_t vl;
    const char* v = lua_tolstring(L, 3, &vl);
    e.v = std::string(v, vl);
  } else if (t == LUA_TNUMBER) {
    if (lua_isinteger(L, 3))
      e.v = lua_tointeger(L, 3);
    else
      e.v = double(lua_tonumber(L, 3));
  } else if (t == LUA_TBOOLEAN) {
    e.v = bool(lua_toboolean(L, 3));
  }
  std::lock_guard<std::mutex> lock(d->mu);
  if (t == LUA_TNIL) {
    d->map.erase(std::string(k, n));
    return 0;
  }
  d->map[std::string(k, n)] = std::move(e);
  sweep(*d, now_ms());
  return 0;
}

int d_delete(lua_State* L) {
  Dict* d = check_dict(L);
  size_t n;
  const char* k = luaL_checklstring(L, 2, &n);
  std::lock_guard<std::mutex> lock(d->mu);
  d->map.erase(std::string(k, n));
  return 0;
}

// incr(key, delta[, init[, ttl]]): atomic across workers. A missing key starts at INIT (0).
int d_incr(lua_State* L) {
  Dict* d = check_dict(L);
  size_t n;
  const char* k = luaL_checklstring(L, 2, &n);
  luaL_checknumber(L, 3);
  if (!lua_isnoneornil(L, 4)) luaL_checknumber(L, 4);
  int64_t exp = ttl_arg(L, 5);
  bool int_delta = lua_isinteger(L, 3);
  lua_Integer di = int_delta ? lua_tointeger(L, 3) : 0;
  double df = lua_tonumber(L, 3);
  bool wrong_type = false;
  {
    std::lock_guard<std::mutex> lock(d->mu);
    int64_t now = now_ms();
    auto it = d->map.find(std::string(k, n));
    if (it == d->map.end() || expired(it->second, now)) {
      Entry e;
      e.expires_ms = exp;
      if (lua_isnoneornil(L, 4) || lua_isinteger(L, 4))
        e.v = lua_isnoneornil(L, 4) ? lua_Integer(0) : lua_tointeger(L, 4);
      else
        e.v = double(lua_tonumber(L, 4));
      it = d->map.insert_or_assign(std::string(k, n), std::move(e)).first;
      sweep(*d, now);
      it = d->map.find(std::string(k, n));
    }
    Entry& e = it->second;
    if (auto* i = std::get_if<lua_Integer>(&e.v)) {
      if (int_delta)
        *i += di;
      else
        e.v = double(*i) + df;
    } else if (auto* f = std::get_if<double>(&e.v)) {
      *f += df;
    } else {
      wrong_type = true;
    }
    if (!wrong_type) push_entry(L, e);
  }
  if (wrong_type) raise(L, "incr(): the value is not a number");
  return 1;
}

int d_ttl(lua_State* L) {
  Dict* d = check_dict(L);
  size_t n;
  const char* k = luaL_checklstring(L, 2, &n);
  std::lock_guard<std::mutex> lock(d->mu);
  auto it = d->map.find(std::string(k, n));
  int64_t now = now_ms();
  if (it == d->map.end() || expired(it->second, now)) return lua_pushnil(L), 1;
  if (!it->second.expires_ms) return lua_pushinteger(L, 0), 1;
  lua_pushnumber(L, double(it->second.expires_ms - now) / 1000.0);
  return 1;
}

}  // namespace

void push_stats(lua_State* L, Dir& d) { new_obj(L, &d, kStats); }

void push_dict(lua_State* L, std::string_view name) {
  new_obj(L, nullptr, kDict);
  lua_pushlightuserdata(L, dict_store().dict(name));
  lua_setiuservalue(L, -2, 1);
}

void register_extra(lua_State* L) {
  static const luaL_Reg stats[] = {{"counter", st_counter},
                                   {"gauge", st_gauge},
                                   {"histogram", st_histogram},
                                   {nullptr, nullptr}};
  new_class(L, kStats, stats, nullptr);
  static const luaL_Reg metric[] = {{"inc", m_inc},
                                    {"add", m_add},
                                    {"dec", m_dec},
                                    {"sub", m_sub},
                                    {"set", m_set},
                                    {"value", m_value},
                                    {"recordValue", m_record},
                                    {nullptr, nullptr}};
  new_class(L, kMetric, metric, nullptr);
  static const luaL_Reg dict[] = {{"get", d_get},       {"set", d_set}, {"incr", d_incr},
                                  {"delete", d_delete}, {"ttl", d_ttl}, {nullptr, nullptr}};
  new_class(L, kDict, dict, nullptr);
}

}  // namespace sylua
