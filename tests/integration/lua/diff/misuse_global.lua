-- a handle kept in a global and used by a later request: object used outside of proper scope
saved = nil

function envoy_on_request(handle)
  local h = handle:headers()
  if saved == nil then
    h:add("x-r-first", "yes")
  elseif h:get("x-t-uncaught") then
    h:add("x-r-before-uncaught", "yes")
    saved:headers():add("x-r-never", "1")
  else
    local ok, err = pcall(function() return saved:headers():get(":path") end)
    h:add("x-r-ok", tostring(ok))
    h:add("x-r-err", tostring(err))
  end
  saved = handle
end
