-- httpCall() then respond() with what it returned
function envoy_on_request(handle)
  local headers, body = handle:httpCall("backend", {
    [":method"] = "GET", [":path"] = "/status?code=202", [":authority"] = "lua-call"}, nil, 5000)
  handle:respond({[":status"] = "200", ["x-r-call-status"] = headers[":status"]},
                 "call said: " .. body)
end
