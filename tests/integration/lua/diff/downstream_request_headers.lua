-- downstreamRequestHeaders() in the response handler, where Envoy has it: read-only
function envoy_on_response(handle)
  local h = handle:headers()
  if handle.downstreamRequestHeaders == nil then
    h:add("x-r-drh", "absent")
    return
  end
  local d = handle:downstreamRequestHeaders()
  h:add("x-r-drh", tostring((d:get("x-t-orig"))))
  h:add("x-r-drh-path", tostring((d:get(":path"))))
  h:add("x-r-drh-num", tostring(d:getNumValues("x-t-orig")))
  local ok = pcall(function() d:add("x-t-new", "1") end)
  h:add("x-r-drh-add", tostring(ok))
end
