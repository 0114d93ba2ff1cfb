-- httpCall() synchronous: request headers (multi-valued), body, response headers table and body
local function flat(s)
  return (tostring(s):gsub("\r", "\\r"):gsub("\n", "\\n"))
end

function envoy_on_request(handle)
  local headers, body = handle:httpCall("backend", {
    [":method"] = "POST",
    [":path"] = "/echo?from=lua",
    [":authority"] = "lua-call",
    ["x-from-lua"] = "yes",
    ["x-multi"] = {"one", "two"},
  }, "hello world", 5000)
  -- A header object does not outlive a yield (httpCall yields): fetched after the calls.
  local h = handle:headers()
  h:add("x-r-status", headers[":status"])
  h:add("x-r-ct", tostring(headers["content-type"]))
  h:add("x-r-from-lua", tostring(body:find('["x-from-lua", "yes"]', 1, true) ~= nil))
  local one = body:find('["x-multi", "one"]', 1, true)
  local two = body:find('["x-multi", "two"]', 1, true)
  h:add("x-r-multi", tostring(one ~= nil and two ~= nil and one < two))
  h:add("x-r-host", tostring(body:find('["host", "lua-call"]', 1, true) ~= nil))
  h:add("x-r-echo-method", tostring(body:match('"method": "(%u+)"')))
  h:add("x-r-echo-path", tostring(body:match('"path": "([^"]*)"')))
  h:add("x-r-echo-length", tostring(body:match('"body_length": (%d+)')))

  local h2, b2 = handle:httpCall("backend", {
    [":method"] = "GET", [":path"] = "/status?code=201", [":authority"] = "lua-call"}, nil, 5000)
  h = handle:headers()
  h:add("x-r-status2", h2[":status"])
  h:add("x-r-body2", flat(b2))
  h:add("x-r-length2", tostring(h2["content-length"]))

  local h3, b3 = handle:httpCall("backend", {
    [":method"] = "GET", [":path"] = "/status?code=204", [":authority"] = "lua-call"}, "", 5000)
  h = handle:headers()
  h:add("x-r-status3", h3[":status"])
  h:add("x-r-body3", tostring(b3))
end
