-- bodyChunks() on the request: no buffering; then trailers() (modifiable) and dynamic metadata
function envoy_on_request(handle)
  local total, data = 0, {}
  for chunk in handle:bodyChunks() do
    total = total + chunk:length()
    data[#data + 1] = chunk:getBytes(0, chunk:length())
  end
  local t = handle:trailers()
  if t then
    t:add("x-r-total", total)
    t:add("x-r-data", table.concat(data))
    t:add("x-r-trailer-seen", tostring((t:get("x-t-trailer"))))
  end
  local md = handle:streamInfo():dynamicMetadata()
  md:set("lua.diff", "total", total)
  md:set("lua.diff", "trailers", t == nil and "nil" or "present")
end

function envoy_on_response(handle)
  local md = handle:streamInfo():dynamicMetadata():get("lua.diff")
  handle:headers():add("x-r-total", md and tostring(md.total) or "none")
  handle:headers():add("x-r-trailers", md and md.trailers or "none")
end
