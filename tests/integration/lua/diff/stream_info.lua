-- streamInfo(): protocol, addresses (ports masked: they differ per proxy), SNI, route name
local function mask(a)
  return (string.gsub(tostring(a), ":%d+$", ":PORT"))
end

local function try(f)
  local ok, v = pcall(f)
  if not ok then
    return "ERR"
  end
  return tostring(v)
end

local function report(handle, prefix)
  local si = handle:streamInfo()
  local h = handle:headers()
  h:add(prefix .. "protocol", try(function() return si:protocol() end))
  h:add(prefix .. "local", mask(try(function() return si:downstreamLocalAddress() end)))
  h:add(prefix .. "remote", mask(try(function() return si:downstreamRemoteAddress() end)))
  h:add(prefix .. "direct-remote",
        mask(try(function() return si:downstreamDirectRemoteAddress() end)))
  h:add(prefix .. "sni", "[" .. try(function() return si:requestedServerName() end) .. "]")
  h:add(prefix .. "route", try(function() return si:routeName() end))
end

function envoy_on_request(handle)
  report(handle, "x-r-")
end

function envoy_on_response(handle)
  report(handle, "x-r-resp-")
end
