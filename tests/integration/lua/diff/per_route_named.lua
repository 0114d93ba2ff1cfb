-- a script chosen by name from source_codes on its route
function envoy_on_request(handle)
  handle:headers():add("x-r-named", "per_route_named")
end

function envoy_on_response(handle)
  handle:headers():add("x-r-named-resp", "per_route_named")
end
