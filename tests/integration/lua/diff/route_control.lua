-- clearRouteCache() and setUpstreamOverrideHost() argument checks (caught with pcall)
local function try(...)
  local ok, err = pcall(...)
  return tostring(ok) .. ":" .. tostring(err)
end

function envoy_on_request(handle)
  local h = handle:headers()
  h:add("x-r-clear", try(handle.clearRouteCache, handle))
  if handle.setUpstreamOverrideHost ~= nil then
    h:add("x-r-override-bad", try(handle.setUpstreamOverrideHost, handle, "not-an-ip"))
    h:add("x-r-override-none", try(handle.setUpstreamOverrideHost, handle))
    h:add("x-r-override-port-junk", try(handle.setUpstreamOverrideHost, handle, "127.0.0.1:x1"))
    h:add("x-r-override-port-big", try(handle.setUpstreamOverrideHost, handle, "127.0.0.1:99999"))
    h:add("x-r-override-v6-port", try(handle.setUpstreamOverrideHost, handle, "[::1]:8080"))
    h:add("x-r-override-port", try(handle.setUpstreamOverrideHost, handle, "127.0.0.1:8080"))
    h:add("x-r-override-ok", try(handle.setUpstreamOverrideHost, handle, "127.0.0.1"))
  else
    h:add("x-r-override-bad", "absent")
  end
end
