-- timestamp() / timestampString(): integral milliseconds, 13 / 16 digit strings, enum checks
function envoy_on_request(handle)
  local h = handle:headers()
  local ms = handle:timestamp()
  local now = os.time() * 1000
  h:add("x-r-ms-digits", tostring(string.match(tostring(ms), "^%d+$") ~= nil))
  h:add("x-r-ms-close", tostring(math.abs(ms - now) < 10000))
  h:add("x-r-ms-type", type(ms))
  local ms2 = handle:timestamp(EnvoyTimestampResolution.MILLISECOND)
  h:add("x-r-ms2-close", tostring(math.abs(ms2 - ms) < 10000))
  local ms_str = handle:timestampString()
  h:add("x-r-str-ms", tostring(#ms_str == 13 and string.match(ms_str, "^%d+$") ~= nil))
  local us = handle:timestampString(EnvoyTimestampResolution.MICROSECOND)
  h:add("x-r-str-us", tostring(#us == 16 and string.match(us, "^%d+$") ~= nil))
  h:add("x-r-enum", tostring(EnvoyTimestampResolution.MILLISECOND) .. "," ..
                    tostring(EnvoyTimestampResolution.MICROSECOND))
  local ok, err = pcall(handle.timestamp, handle, EnvoyTimestampResolution.MICROSECOND)
  h:add("x-r-us-number", tostring(ok) .. ":" .. tostring(err))
  local ok2, err2 = pcall(handle.timestampString, handle, 12345)
  h:add("x-r-bad-res", tostring(ok2) .. ":" .. tostring(err2))
end
