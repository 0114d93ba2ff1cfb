-- filterContext(): the route's filter_context (or an empty one)
function envoy_on_request(handle)
  local c = handle:filterContext()
  local h = handle:headers()
  h:add("x-r-greeting", tostring((c:get("greeting"))))
  h:add("x-r-n", tostring((c:get("n"))))
  h:add("x-r-missing", tostring((c:get("missing"))))
  h:add("x-r-missing-count", select("#", c:get("missing")))
  local nested = c:get("nested")
  h:add("x-r-nested", nested and tostring(nested.deep) or "nil")
end

function envoy_on_response(handle)
  handle:headers():add("x-r-resp-greeting", tostring((handle:filterContext():get("greeting"))))
end
