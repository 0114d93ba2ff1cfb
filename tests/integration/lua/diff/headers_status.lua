-- the response's :status can be replaced by the response handler
function envoy_on_response(handle)
  local h = handle:headers()
  h:add("x-r-old-status", h:get(":status"))
  h:replace(":status", "202")
end
