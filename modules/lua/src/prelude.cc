// The LuaJIT compatibility prelude: what Envoy scripts (written for LuaJIT, i.e. Lua 5.1 with
// some 5.2) call that Lua 5.4 renamed, moved or dropped. It runs in every state before the
// script.
#include "lua_module.h"

namespace sylua {

const char* const kPrelude = R"LUA(
local floor, fmt, mtype = math.floor, string.format, math.type

unpack = unpack or table.unpack
loadstring = loadstring or function(s, name) return load(s, name) end
table.getn = table.getn or function(t) return #t end
table.maxn = table.maxn or function(t)
  local m = 0
  for k in pairs(t) do
    if type(k) == "number" and k > m then m = k end
  end
  return m
end
math.pow = math.pow or function(x, y) return x ^ y end
math.log10 = math.log10 or function(x) return math.log(x, 10) end
math.ldexp = math.ldexp or function(m, e) return m * 2.0 ^ e end
math.frexp = math.frexp or function(x)
  if x == 0 or x ~= x or x == math.huge or x == -math.huge then return x, 0 end
  local e = floor(math.log(math.abs(x), 2)) + 1
  local m = x / 2.0 ^ e
  if math.abs(m) >= 1 then m, e = m / 2, e + 1 end
  if math.abs(m) < 0.5 then m, e = m * 2, e - 1 end
  return m, e
end
math.mod = math.mod or math.fmod
string.gfind = string.gfind or string.gmatch

-- LuaJIT prints numbers with "%.14g": 10.0 is "10", not "10.0".
local tostring54 = tostring
tostring = function(v)
  if mtype(v) == "float" then return fmt("%.14g", v) end
  return tostring54(v)
end

-- setfenv/getfenv for functions, through the _ENV upvalue (best effort: a function that uses
-- no global has no _ENV to replace).
local function env_index(f)
  local i = 1
  while true do
    local name = debug.getupvalue(f, i)
    if name == "_ENV" then return i end
    if name == nil then return nil end
    i = i + 1
  end
end
getfenv = getfenv or function(f)
  if f == nil or f == 0 then return _G end
  if type(f) == "number" then f = debug.getinfo(f + 1, "f").func end
  local i = env_index(f)
  if not i then return _G end
  local _, env = debug.getupvalue(f, i)
  return env
end
setfenv = setfenv or function(f, env)
  if type(f) == "number" then f = debug.getinfo(f + 1, "f").func end
  local i = env_index(f)
  if i then debug.upvaluejoin(f, i, function() return env end, 1) end
  return f
end

-- LuaJIT's bit module (BitOp): 32-bit operations with signed results.
local function tobit(x)
  x = floor(x) % 4294967296
  if x >= 2147483648 then x = x - 4294967296 end
  return x
end
local function u32(x) return floor(x) % 4294967296 end
local function fold(op, ...)
  local n = select("#", ...)
  local acc = u32((...))
  for i = 2, n do acc = op(acc, u32((select(i, ...)))) end
  return tobit(acc)
end
bit = {
  tobit = tobit,
  band = function(...) return fold(function(a, b) return a & b end, ...) end,
  bor = function(...) return fold(function(a, b) return a | b end, ...) end,
  bxor = function(...) return fold(function(a, b) return a ~ b end, ...) end,
  bnot = function(x) return tobit(~u32(x) & 0xffffffff) end,
  lshift = function(x, n) return tobit((u32(x) << (n % 32)) & 0xffffffff) end,
  rshift = function(x, n) return tobit(u32(x) >> (n % 32)) end,
  arshift = function(x, n)
    n = n % 32
    local v = tobit(x)
    if v >= 0 then return tobit(v >> n) end
    return tobit(((u32(x) >> n) | ~(0xffffffff >> n)) & 0xffffffff)
  end,
  rol = function(x, n)
    n = n % 32
    local v = u32(x)
    return tobit(((v << n) | (v >> (32 - n))) & 0xffffffff)
  end,
  ror = function(x, n)
    n = n % 32
    local v = u32(x)
    return tobit(((v >> n) | (v << (32 - n))) & 0xffffffff)
  end,
  bswap = function(x)
    local v = u32(x)
    return tobit(((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >> 8) & 0xff00) | (v >> 24))
  end,
  tohex = function(x, n)
    n = n or 8
    local upper = n < 0
    if upper then n = -n end
    local s = fmt(upper and "%08X" or "%08x", u32(x))
    return s:sub(-n)
  end,
}
package.loaded.bit = bit
package.preload["table.new"] = function() return function() return {} end end
package.preload["table.clear"] = function()
  return function(t) for k in pairs(t) do t[k] = nil end end
end
for _, name in ipairs({"ffi", "jit"}) do
  package.preload[name] = function()
    error("LuaJIT's " .. name .. " module does not exist on Lua 5.4 (Switchyard runs Envoy " ..
          "scripts on PUC Lua 5.4)", 2)
  end
end

EnvoyTimestampResolution = {MILLISECOND = 0, MICROSECOND = 1}
)LUA";

}  // namespace sylua
