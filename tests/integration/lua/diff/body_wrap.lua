-- body(true): always a buffer, empty when there is no body
function envoy_on_request(handle)
  local b = handle:body(true)
  local h = handle:headers()
  h:add("x-r-req-len", b:length())
  h:add("x-r-req-bytes", "[" .. b:getBytes(0, b:length()) .. "]")
end

function envoy_on_response(handle)
  local b = handle:body(true)
  local h = handle:headers()
  h:add("x-r-resp-len", b:length())
  h:add("x-r-resp-type", type(b))
end
