-- the log methods: every level takes a string; the marker from the request finds the lines
function envoy_on_request(handle)
  local marker = handle:headers():get("x-t-marker") or "none"
  handle:logTrace("lua-diff trace " .. marker)
  handle:logDebug("lua-diff debug " .. marker)
  handle:logInfo("lua-diff info " .. marker)
  handle:logWarn("lua-diff warn " .. marker)
  handle:logErr("lua-diff err " .. marker)
  handle:logCritical("lua-diff critical " .. marker)
  handle:headers():add("x-r-logged", "yes")
end

function envoy_on_response(handle)
  handle:logInfo("lua-diff response info")
  handle:headers():add("x-r-resp-logged", "yes")
end
