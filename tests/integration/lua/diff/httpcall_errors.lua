-- httpCall() argument errors, each caught with pcall before anything is sent
local function try(...)
  local ok, err = pcall(...)
  return tostring(ok) .. ":" .. tostring(err)
end

function envoy_on_request(handle)
  local h = handle:headers()
  local good = {[":method"] = "GET", [":path"] = "/status?code=200", [":authority"] = "x"}
  h:add("x-r-bad-cluster", try(handle.httpCall, handle, "no-such-cluster", good, "", 1000))
  h:add("x-r-no-path", try(handle.httpCall, handle, "backend",
                           {[":method"] = "GET", [":authority"] = "x"}, "", 1000))
  h:add("x-r-negative-timeout", try(handle.httpCall, handle, "backend", good, "", -1))
  h:add("x-r-bad-async-flag", try(handle.httpCall, handle, "backend", good, "", 1000, "yes"))
end
