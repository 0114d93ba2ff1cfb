-- The Lua scenario's filter, run as it is by Switchyard's lua module and by Envoy's Lua filter:
-- one header added on the way up, one on the way back.
function envoy_on_request(request_handle)
  request_handle:headers():add("x-lua-request", "1")
end

function envoy_on_response(response_handle)
  response_handle:headers():add("x-lua", "1")
end
