-- numbers crossing into the proxy: integral values print without .0, floats LuaJIT-style
function envoy_on_request(handle)
  local b = handle:body()
  local h = handle:headers()
  h:add("x-r-len", b:length())
  h:add("x-r-len-tostring", tostring(b:length()))
  h:add("x-r-len-concat", "" .. b:length())
  h:add("x-r-len-format", string.format("%d", b:length()))
  h:add("x-r-len-half", b:length() / 2)
  h:add("x-r-div", 10 / 2)
  h:add("x-r-frac", 2.5)
  h:add("x-r-third", 1 / 3)
  h:add("x-r-big", 2 ^ 53)
  h:add("x-r-neg", -7)
  -- Pure Lua, no proxy boundary: LuaJIT prints 5, Lua 5.4 prints 5.0.
  h:add("x-r-div-tostring", tostring(10 / 2))
end
