-- route():metadata() and virtualHost():metadata(), in both directions
function envoy_on_request(handle)
  local h = handle:headers()
  h:add("x-r-route-str", tostring((handle:route():metadata():get("str"))))
  h:add("x-r-route-num", tostring((handle:route():metadata():get("num"))))
  h:add("x-r-vhost", tostring((handle:virtualHost():metadata():get("vh"))))
  h:add("x-r-vhost-num", tostring((handle:virtualHost():metadata():get("vnum"))))
  h:add("x-r-vhost-missing", tostring((handle:virtualHost():metadata():get("missing"))))
end

function envoy_on_response(handle)
  local h = handle:headers()
  h:add("x-r-route-str", tostring((handle:route():metadata():get("str"))))
  h:add("x-r-vhost", tostring((handle:virtualHost():metadata():get("vh"))))
end
