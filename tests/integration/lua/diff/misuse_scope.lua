-- objects past their scope: the first body chunk kept after the loop (the request comes in
-- two pieces), a header object kept across the loop's yields, headers changed after they went
-- on (results carried to the response in dynamic metadata)
function envoy_on_request(handle)
  local h = handle:headers()
  local first
  for chunk in handle:bodyChunks() do
    first = first or chunk
  end
  local ok1, e1 = pcall(function() return first:length() end)
  local ok2, e2 = pcall(function() handle:headers():add("x-r-late", "1") end)
  local ok3, e3 = pcall(function() return h:get(":path") end)
  local ok4, e4 = pcall(function() return handle:headers():get(":path") end)
  local md = handle:streamInfo():dynamicMetadata()
  md:set("lua.diff", "chunk", tostring(ok1) .. ":" .. tostring(e1))
  md:set("lua.diff", "late_add", tostring(ok2) .. ":" .. tostring(e2))
  md:set("lua.diff", "stale_get", tostring(ok3) .. ":" .. tostring(e3))
  md:set("lua.diff", "fresh_get", tostring(ok4) .. ":" .. tostring(e4))
end

function envoy_on_response(handle)
  local d = handle:streamInfo():dynamicMetadata():get("lua.diff") or {}
  local h = handle:headers()
  h:add("x-r-chunk", tostring(d.chunk))
  h:add("x-r-late-add", tostring(d.late_add))
  h:add("x-r-stale-get", tostring(d.stale_get))
  h:add("x-r-fresh-get", tostring(d.fresh_get))
end
