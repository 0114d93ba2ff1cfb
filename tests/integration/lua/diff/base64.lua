-- base64Escape() (binary safe); base64Decode() where it exists
function envoy_on_request(handle)
  local h = handle:headers()
  h:add("x-r-hello", handle:base64Escape("hello"))
  h:add("x-r-empty", "[" .. handle:base64Escape("") .. "]")
  h:add("x-r-one", handle:base64Escape("a"))
  h:add("x-r-binary", handle:base64Escape("\0\1\2\255\254 end"))
  if handle.base64Decode ~= nil then
    local ok, v = pcall(handle.base64Decode, handle, "aGVsbG8gd29ybGQ=")
    h:add("x-r-decode", tostring(ok) .. ":" .. tostring(v))
    local ok2, v2 = pcall(handle.base64Decode, handle, "!!not base64!!")
    h:add("x-r-decode-bad", tostring(ok2) .. ":" .. tostring(v2))
  else
    h:add("x-r-decode", "absent")
  end
end
