-- multi-valued headers: get joins with commas, getNumValues, getAtIndex (0-based), replace
function envoy_on_request(handle)
  local h = handle:headers()
  h:add("x-r-get", h:get("x-t-multi"))
  h:add("x-r-num", h:getNumValues("x-t-multi"))
  h:add("x-r-num-single", h:getNumValues("x-t-single"))
  h:add("x-r-num-missing", h:getNumValues("x-t-missing"))
  local at = {}
  for i = -1, 3 do
    at[#at + 1] = tostring((h:getAtIndex("x-t-multi", i)))
  end
  h:add("x-r-at", table.concat(at, "|"))
  h:add("x-r-at-missing", tostring((h:getAtIndex("x-t-missing", 0))))
  h:add("x-r-at-counts", select("#", h:getAtIndex("x-t-multi", 3)) .. "," ..
                         select("#", h:getAtIndex("x-t-multi", -1)) .. "," ..
                         select("#", h:getAtIndex("x-t-missing", 0)))
  h:add("x-r-dup", "one")
  h:add("x-r-dup", "two")
  h:add("x-r-dup-num", h:getNumValues("x-r-dup"))
  h:add("x-r-dup-get", h:get("x-r-dup"))
  h:replace("x-t-multi", "replaced")
  h:add("x-r-after-replace", h:getNumValues("x-t-multi"))
end

function envoy_on_response(handle)
  local h = handle:headers()
  h:add("set-cookie", "a=1; Path=/")
  h:add("set-cookie", "b=2, c=3")
  h:add("x-r-cookies", h:getNumValues("set-cookie"))
  h:add("x-r-cookie-1", h:getAtIndex("set-cookie", 1))
  h:add("x-r-cookie-get", h:get("set-cookie"))
end
