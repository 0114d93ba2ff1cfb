-- httpCall() that fails: unreachable cluster, upstream reset mid-body, timeout
local function flat(s)
  return (tostring(s):gsub("\r", "\\r"):gsub("\n", "\\n"))
end

function envoy_on_request(handle)
  local target = handle:headers():get("x-t-target")
  local cluster, path, timeout = "backend", "/status?code=200", 5000
  if target == "dead" then
    cluster = "dead"
  elseif target == "abort" then
    path = "/abort?claim=1000&send=10"
  elseif target == "timeout" then
    path = "/slow?ms=5000"
    timeout = 300
  end
  local headers, body = handle:httpCall(cluster, {
    [":method"] = "GET", [":path"] = path, [":authority"] = "lua-call"}, nil, timeout)
  local h = handle:headers()
  h:add("x-r-status", tostring(headers[":status"]))
  h:add("x-r-body", flat(body))
  local names = {}
  for k, _ in pairs(headers) do
    names[#names + 1] = k
  end
  table.sort(names)
  h:add("x-r-names", table.concat(names, ","))
end
