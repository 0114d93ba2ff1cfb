-- metadata(): the route's filter_metadata for the Lua filter, every value type, and pairs()
function envoy_on_request(handle)
  local m = handle:metadata()
  local h = handle:headers()
  h:add("x-r-str", m:get("str"))
  h:add("x-r-num", tostring((m:get("num"))))
  h:add("x-r-num-concat", "n=" .. m:get("num"))
  h:add("x-r-num-header", m:get("num"))
  h:add("x-r-float", tostring((m:get("float"))))
  h:add("x-r-bool", tostring((m:get("bool"))))
  h:add("x-r-missing", tostring((m:get("missing"))))
  h:add("x-r-missing-count", select("#", m:get("missing")))
  local l = m:get("list")
  h:add("x-r-list", type(l) .. ":" .. tostring(l[1]) .. "," .. tostring(l[2]) .. ",#" .. #l)
  local n = m:get("nested")
  h:add("x-r-nested", type(n) .. ":" .. n.k .. "," .. tostring(n.n))
  local keys = {}
  for k, _ in pairs(m) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  h:add("x-r-keys", table.concat(keys, ","))
end

function envoy_on_response(handle)
  handle:headers():add("x-r-resp-str", tostring((handle:metadata():get("str"))))
end
