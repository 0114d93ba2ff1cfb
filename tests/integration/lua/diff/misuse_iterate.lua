-- headers modified while pairs() iterates them: an error; the unfinished iterator then blocks
-- modification and a second pairs() (results carried to the response in dynamic metadata)
local function try(f)
  local ok, err = pcall(f)
  return tostring(ok) .. ":" .. tostring(err)
end

function envoy_on_request(handle)
  local h = handle:headers()
  local md = handle:streamInfo():dynamicMetadata()
  md:set("lua.diff", "in_loop", try(function()
    for k, _ in pairs(h) do
      h:add("x-r-in-loop", k)
    end
  end))
  md:set("lua.diff", "after_loop", try(function() h:add("x-r-after-loop", "1") end))
  md:set("lua.diff", "second_pairs", try(function()
    for _ in pairs(h) do
    end
  end))
end

function envoy_on_response(handle)
  local d = handle:streamInfo():dynamicMetadata():get("lua.diff") or {}
  local h = handle:headers()
  h:add("x-r-in-loop", tostring(d.in_loop))
  h:add("x-r-after-loop", tostring(d.after_loop))
  h:add("x-r-second-pairs", tostring(d.second_pairs))
end
