-- a runtime error: logged and counted, the stream goes on with what was done before it
function envoy_on_request(handle)
  local h = handle:headers()
  h:add("x-r-before-error", "yes")
  local kind = h:get("x-t-error")
  if kind == "index" then
    local t = nil
    h:add("x-r-never", t.field)
  elseif kind == "body" then
    local b = handle:body()
    h = handle:headers()
    h:add("x-r-body-len", b:length())
    error("lua-diff body error " .. tostring((h:get("x-t-marker"))))
  elseif kind ~= "none" then
    error("lua-diff request error " .. tostring((h:get("x-t-marker"))))
  end
end

function envoy_on_response(handle)
  handle:headers():add("x-r-resp-before-error", "yes")
  error("lua-diff response error")
end
