-- handle:stats() custom metrics, where Envoy has them
function envoy_on_request(handle)
  local h = handle:headers()
  if handle.stats == nil then
    h:add("x-r-stats", "absent")
    return
  end
  local c = handle:stats():counter("diff_hits")
  c:inc()
  c:add(2)
  h:add("x-r-counter", tostring(c:value()))
  local g = handle:stats():gauge("diff_level")
  g:set(10)
  g:dec()
  g:sub(3)
  g:inc()
  g:add(5)
  h:add("x-r-gauge", tostring(g:value()))
  local ok, err = pcall(function() c:add(-1) end)
  h:add("x-r-negative", tostring(ok) .. ":" .. tostring(err))
end
