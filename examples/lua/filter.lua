-- An Envoy Lua script (it runs unchanged on Envoy's envoy.filters.http.lua) using two things
-- only Switchyard's Lua module has: handle:ctx() and handle:sharedDict().

function envoy_on_request(request_handle)
  if request_handle:headers():get("x-api-key") == "nope" then
    request_handle:respond({[":status"] = "403", ["content-type"] = "text/plain"}, "forbidden\n")
  end
  -- Per request, shared with envoy_on_response (Envoy needs dynamic metadata for this).
  request_handle:ctx().started = request_handle:timestamp()
end

function envoy_on_response(response_handle)
  -- One counter for all workers.
  local n = response_handle:sharedDict("demo"):incr("requests", 1)
  response_handle:headers():add("x-request-count", n)
  local took = response_handle:timestamp() - response_handle:ctx().started
  response_handle:headers():add("x-lua-took", took .. "ms")
end
