-- the script's own coroutines work; a yield out of the handler is an error (fail-open)
function envoy_on_request(handle)
  local h = handle:headers()
  local co = coroutine.create(function(a)
    local b = coroutine.yield(a + 1)
    return b * 2
  end)
  local ok1, v1 = coroutine.resume(co, 1)
  local ok2, v2 = coroutine.resume(co, 10)
  h:add("x-r-own-coroutine", tostring(ok1) .. "," .. v1 .. "," .. tostring(ok2) .. "," .. v2)
  h:add("x-r-before-yield", "yes")
  coroutine.yield()
  h:add("x-r-after-yield", "yes")
end

function envoy_on_response(handle)
  handle:headers():add("x-r-resp-ran", "yes")
end
