-- respond() refused: bad :status values (caught; the request goes on), and respond() after the
-- request headers went on (reported through dynamic metadata)
local function try(...)
  local ok, err = pcall(...)
  return tostring(ok) .. ":" .. tostring(err)
end

function envoy_on_request(handle)
  local h = handle:headers()
  local case = h:get("x-t-case")
  if case == "continued" then
    for _ in handle:bodyChunks() do
    end
    handle:streamInfo():dynamicMetadata():set("lua.diff", "err",
      try(handle.respond, handle, {[":status"] = "200"}, "late"))
    return
  end
  h:add("x-r-100", try(handle.respond, handle, {[":status"] = "100"}, "x"))
  h:add("x-r-600", try(handle.respond, handle, {[":status"] = "600"}, "x"))
  h:add("x-r-abc", try(handle.respond, handle, {[":status"] = "abc"}, "x"))
  h:add("x-r-missing", try(handle.respond, handle, {["x-a"] = "b"}, "x"))
  h:add("x-r-not-table", try(handle.respond, handle, "200", "x"))
  if case == "uncaught" then
    h:add("x-r-before-uncaught", "yes")
    handle:respond({[":status"] = "99"}, "x")
  end
end

function envoy_on_response(handle)
  local md = handle:streamInfo():dynamicMetadata():get("lua.diff")
  handle:headers():add("x-r-continued", md and md.err or "none")
end
