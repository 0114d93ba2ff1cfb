-- LuaJIT's globals that Lua 5.4 lacks (Envoy runs LuaJIT): unpack, loadstring, bit.*,
-- table.getn/maxn, math.pow/log10/ldexp/frexp/mod, getfenv. Each result is formatted with
-- %.14g so that only the function, not tostring's float style, is compared.
local function fmt(...)
  local out = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "number" then
      out[#out + 1] = string.format("%.14g", v)
    else
      out[#out + 1] = tostring(v)
    end
  end
  return table.concat(out, " ")
end

local function pack(...)
  return {n = select("#", ...), ...}
end

local function try(f)
  local r = pack(pcall(f))
  if not r[1] then
    return "ERR"
  end
  return fmt((unpack or table.unpack)(r, 2, r.n))
end

function envoy_on_request(handle)
  local h = handle:headers()
  local function put(name, f)
    h:add("x-r-" .. name, try(f))
  end
  put("unpack", function() return unpack({1, 2, 3}) end)
  put("table-unpack", function() return table.unpack({4, 5}) end)
  put("loadstring", function() return loadstring("return 1 + 1")() end)
  put("band", function() return bit.band(0xff, 0x0f) end)
  put("bor", function() return bit.bor(1, 2, 4) end)
  put("bxor", function() return bit.bxor(0xf0, 0xff) end)
  put("bnot", function() return bit.bnot(0) end)
  put("lshift", function() return bit.lshift(1, 4), bit.lshift(1, 31) end)
  put("rshift", function() return bit.rshift(-1, 28), bit.rshift(256, 4) end)
  put("arshift", function() return bit.arshift(-16, 2), bit.arshift(0x80000000, 4) end)
  put("rol", function() return bit.rol(1, 31), bit.ror(1, 1) end)
  put("tobit", function() return bit.tobit(0xffffffff), bit.tobit(2 ^ 32 + 5) end)
  put("tohex", function() return bit.tohex(255), bit.tohex(-1), bit.tohex(255, 2) end)
  put("bswap", function() return bit.bswap(0x12345678) end)
  put("getn", function() return table.getn({1, 2, 3}) end)
  put("maxn", function() return table.maxn({1, 2, [10] = 3}) end)
  put("pow", function() return math.pow(2, 10) end)
  put("log10", function() return math.log10(1000) end)
  put("ldexp", function() return math.ldexp(1, 4) end)
  put("frexp", function() return math.frexp(8) end)
  put("mod", function() return math.mod(7, 3) end)
  put("fmod", function() return math.fmod(7, 3) end)
  put("getfenv", function() return getfenv(1) == _G end)
  put("table-pack", function() local t = table.pack(1, nil, 3) return t.n end)
  put("goto", function()
    local n = 0
    ::again::
    n = n + 1
    if n < 3 then goto again end
    return n
  end)
  put("string-rep", function() return string.rep("ab", 3, ",") end)
end
