-- trailers() after body(): read, add, replace, remove, iterate; nil without trailers
function envoy_on_request(handle)
  local b = handle:body()
  local t = handle:trailers()
  local h = handle:headers()
  h:add("x-r-body-len", b and tostring(b:length()) or "nil")
  if t == nil then
    h:add("x-r-trailer", "no trailers")
    return
  end
  h:add("x-r-trailer", tostring((t:get("x-t-trailer"))))
  t:add("x-r-trailer-added", "yes")
  t:replace("x-t-trailer", "replaced")
  t:remove("x-t-drop")
  local seen = {}
  for k, v in pairs(t) do
    seen[#seen + 1] = k .. "=" .. v
  end
  h:add("x-r-trailers", table.concat(seen, ";"))
end
