-- body() without a body is nil, in both directions
function envoy_on_request(handle)
  local b = handle:body()
  handle:streamInfo():dynamicMetadata():set("lua.diff", "req_body", b == nil and "nil" or "buffer")
end

function envoy_on_response(handle)
  local b = handle:body()
  local h = handle:headers()
  local md = handle:streamInfo():dynamicMetadata():get("lua.diff")
  h:add("x-r-req-body", md and md.req_body or "none")
  h:add("x-r-resp-body", b == nil and "nil" or tostring(b:length()))
end
