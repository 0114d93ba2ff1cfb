-- setBytes() on the buffered response body; content-length follows
function envoy_on_response(handle)
  local b = handle:body()
  local h = handle:headers()
  h:add("x-r-old-len", b:length())
  b:setBytes("ok")
  h:add("x-r-new-len", b:length())
end
