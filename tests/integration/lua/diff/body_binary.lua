-- a binary body with NUL and high bytes: getBytes, #string, base64Escape
local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

function envoy_on_request(handle)
  local b = handle:body()
  local s = b:getBytes(0, b:length())
  local h = handle:headers()
  h:add("x-r-len", b:length())
  h:add("x-r-strlen", #s)
  h:add("x-r-hex", hex(s))
  h:add("x-r-hex-1-3", hex(b:getBytes(1, 3)))
  h:add("x-r-b64", handle:base64Escape(s))
  h:add("x-r-nul-at", tostring(s:find("\0", 2, true)))
  h:add("x-r-byte-last", s:byte(-2))
end
