-- streamInfo():dynamicMetadata(): set in the request, read back in the response (numbers,
-- booleans, tables, lists), pairs() over namespaces
function envoy_on_request(handle)
  local dm = handle:streamInfo():dynamicMetadata()
  dm:set("envoy.lb", "foo", "bar")
  dm:set("lua.diff", "complex", {x = 1234, y = "baz", z = true})
  dm:set("lua.diff", "list", {"cool", "and", "dynamic", true})
  dm:set("lua.diff", "num", 5)
  dm:set("lua.diff", "half", 2.5)
  local h = handle:headers()
  h:add("x-r-req-get", dm:get("envoy.lb")["foo"])
  h:add("x-r-req-missing", tostring((dm:get("lua.none"))))
  h:add("x-r-req-missing-count", select("#", dm:get("lua.none")))
end

function envoy_on_response(handle)
  local dm = handle:streamInfo():dynamicMetadata()
  local h = handle:headers()
  local d = dm:get("lua.diff")
  h:add("x-r-foo", dm:get("envoy.lb")["foo"])
  h:add("x-r-x", tostring(d.complex.x))
  h:add("x-r-y", d.complex.y)
  h:add("x-r-z", tostring(d.complex.z))
  h:add("x-r-list", table.concat({tostring(d.list[1]), tostring(d.list[2]),
                                  tostring(d.list[3]), tostring(d.list[4]), "#" .. #d.list}, ","))
  h:add("x-r-num", tostring(d.num))
  h:add("x-r-half", tostring(d.half))
  local ns = {}
  for k, _ in pairs(dm) do
    ns[#ns + 1] = k
  end
  table.sort(ns)
  h:add("x-r-namespaces", table.concat(ns, ","))
end
