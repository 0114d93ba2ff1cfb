-- httpCall() asynchronous (positional flag and options table): returns at once, the request
-- goes on; the paths come from the request so the test can find them upstream
function envoy_on_request(handle)
  local h = handle:headers()
  local prefix = h:get("x-t-async-path")
  local r = {handle:httpCall("backend", {
    [":method"] = "GET", [":path"] = prefix .. "/positional", [":authority"] = "lua-call"},
    "", 5000, true)}
  h:add("x-r-returned", #r)
  local ok, err = pcall(handle.httpCall, handle, "backend", {
    [":method"] = "GET", [":path"] = prefix .. "/options", [":authority"] = "lua-call"},
    "", {asynchronous = true, timeout_ms = 5000})
  h:add("x-r-options", tostring(ok) .. ":" .. tostring(err))
end
