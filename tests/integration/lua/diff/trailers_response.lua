-- response trailers after body(): read, add, remove; nil without trailers
function envoy_on_response(handle)
  local b = handle:body()
  local t = handle:trailers()
  local h = handle:headers()
  h:add("x-r-body-len", b and tostring(b:length()) or "nil")
  if t == nil then
    h:add("x-r-extra", "no trailers")
    return
  end
  h:add("x-r-extra", tostring((t:get("x-extra"))))
  t:add("x-r-lua-trailer", "1")
  t:remove("x-checksum")
end
