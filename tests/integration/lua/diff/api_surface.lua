-- which methods each object has: the request and response handles, headers, body buffer,
-- stream info, dynamic metadata, connection. Names absent from Envoy 1.40 show as absent.
local HANDLE = {"headers", "body", "bodyChunks", "trailers", "metadata", "streamInfo",
  "connection", "connectionStreamInfo", "logTrace", "logDebug", "logInfo", "logWarn", "logErr",
  "logCritical", "httpCall", "respond", "importPublicKey", "verifySignature", "base64Escape",
  "base64Decode", "timestamp", "timestampString", "setUpstreamOverrideHost", "clearRouteCache",
  "filterContext", "virtualHost", "route", "stats", "filterState"}
local HEADERS = {"add", "get", "getAtIndex", "getNumValues", "remove", "replace",
  "setHttp1ReasonPhrase"}
local BUFFER = {"length", "getBytes", "setBytes"}
local STREAM_INFO = {"protocol", "dynamicMetadata", "downstreamLocalAddress",
  "downstreamDirectLocalAddress", "downstreamRemoteAddress", "downstreamDirectRemoteAddress",
  "downstreamSslConnection", "requestedServerName", "routeName", "virtualClusterName",
  "filterState", "dynamicTypedMetadata", "drainConnectionUponCompletion"}
local DYNAMIC_METADATA = {"get", "set"}
local CONNECTION = {"ssl"}

local function has(object, names)
  local out = {}
  for _, name in ipairs(names) do
    local ok, v = pcall(function() return object[name] end)
    out[#out + 1] = name .. "=" .. tostring(ok and v ~= nil)
  end
  return table.concat(out, ",")
end

function envoy_on_request(handle)
  local h = handle:headers()
  local b = handle:body(true)
  local si = handle:streamInfo()
  local rows = {
    {"x-r-handle", has(handle, HANDLE)},
    {"x-r-headers", has(h, HEADERS)},
    {"x-r-buffer", has(b, BUFFER)},
    {"x-r-stream-info", has(si, STREAM_INFO)},
    {"x-r-dynamic-metadata", has(si:dynamicMetadata(), DYNAMIC_METADATA)},
    {"x-r-connection", has(handle:connection(), CONNECTION)},
    {"x-r-types", type(handle) .. "," .. type(h) .. "," .. type(b) .. "," .. type(si)},
    {"x-r-globals", has(_G, {"EnvoyTimestampResolution", "envoy_on_request"})},
    -- Not in Envoy 1.40: Switchyard's additions, and downstreamRequestHeaders (newer Envoy).
    {"x-r-extras", has(handle, {"ctx", "sharedDict", "downstreamRequestHeaders"})},
  }
  for _, row in ipairs(rows) do
    h:add(row[1], row[2])
  end
end

function envoy_on_response(handle)
  handle:headers():add("x-r-response-handle", has(handle, HANDLE))
end
