-- default_source_code: runs on routes without a per-route Lua config
function envoy_on_request(handle)
  handle:headers():add("x-r-default", "yes")
end

function envoy_on_response(handle)
  handle:headers():add("x-r-default-resp", "yes")
  handle:headers():add("x-r-default-route-md", tostring((handle:route():metadata():get("str"))))
end
