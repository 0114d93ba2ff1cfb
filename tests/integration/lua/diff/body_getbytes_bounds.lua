-- getBytes() outside the body is an error (caught here with pcall)
function envoy_on_request(handle)
  local b = handle:body()
  local h = handle:headers()
  local function try(i, n)
    local ok, v = pcall(b.getBytes, b, i, n)
    return tostring(ok) .. ":" .. tostring(v)
  end
  h:add("x-r-past-end", try(5, 100))
  h:add("x-r-negative", try(-1, 2))
  h:add("x-r-at-end", try(10, 1))
  h:add("x-r-exact", try(8, 2))
end
