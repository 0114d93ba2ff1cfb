// The userdata every script-visible object is: which coroutine run it belongs to and what it
// is about. Metatable names are the type checks. No object has a __gc: at tens of thousands
// of requests per second, finalizers would outpace the collector.
#pragma once

#include "lua_module.h"

namespace sylua {

constexpr const char* kHandle = "sylua.handle";
constexpr const char* kHeaders = "sylua.headers";
constexpr const char* kHeadersRo = "sylua.headers_ro";
constexpr const char* kBuffer = "sylua.buffer";
constexpr const char* kStreamInfo = "sylua.streaminfo";
constexpr const char* kDynMeta = "sylua.dynmeta";
constexpr const char* kFilterState = "sylua.filterstate";
constexpr const char* kConnection = "sylua.connection";
constexpr const char* kConnStreamInfo = "sylua.connstreaminfo";
constexpr const char* kSsl = "sylua.ssl";
constexpr const char* kMeta = "sylua.meta";
constexpr const char* kRouteLike = "sylua.routelike";
constexpr const char* kStats = "sylua.stats";
constexpr const char* kMetric = "sylua.metric";
constexpr const char* kPubKey = "sylua.pubkey";
constexpr const char* kDict = "sylua.dict";

struct Obj {
  uint64_t serial;  // Dir::serial of the run that made it; 0: not tied to a stream
  int kind;         // header kind, body part, metric kind, ...
  uint32_t gen;     // bodyChunks(): the chunk this buffer is
  uint32_t id;      // metric id
};

// A new object of metatable MT bound to D (one user value slot, for a Lua table).
Obj* new_obj(lua_State* L, Dir* d, const char* mt);
Obj* check(lua_State* L, int i, const char* mt);
// Registers a metatable with METHODS as __index, and EXTRA
// metamethods (e.g. __pairs).
void new_class(lua_State* L, const char* mt, const luaL_Reg* methods, const luaL_Reg* extra);
// Lua error with a message (never returns); keeps C++ temporaries out of the longjmp.
[[noreturn]] void raise(lua_State* L, const char* fmt, ...);
// Pushes a Lua value converted from a metadata-like table into JSON text (for the host).
void to_json(lua_State* L, int idx, std::string* out, int depth = 0);
// A stream attribute (attribute_get) of D's stream into OUT; false when it has none.
bool attr(Dir& d, const char* path, std::string* out);
void push_route_like(lua_State* L, const json::Value* metadata);
void push_stream_info(lua_State* L, Dir& d);
void push_connection(lua_State* L, Dir& d);
void push_conn_stream_info(lua_State* L, Dir& d);
void push_stats(lua_State* L, Dir& d);
void push_dict(lua_State* L, std::string_view name);

}  // namespace sylua
