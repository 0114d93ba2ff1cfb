-- connection():ssl() is nil on plaintext; connectionStreamInfo():dynamicMetadata() is empty
local function try(f)
  local ok, v = pcall(f)
  if not ok then
    return "ERR"
  end
  return tostring(v)
end

function envoy_on_request(handle)
  local h = handle:headers()
  h:add("x-r-ssl", tostring(handle:connection():ssl()))
  h:add("x-r-ssl-nil", tostring(handle:connection():ssl() == nil))
  h:add("x-r-conn-md", try(function()
    local n = 0
    for _, _ in pairs(handle:connectionStreamInfo():dynamicMetadata()) do
      n = n + 1
    end
    return n
  end))
end

function envoy_on_response(handle)
  handle:headers():add("x-r-resp-ssl", tostring(handle:connection():ssl()))
end
