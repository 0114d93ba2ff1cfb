-- setBytes() on the buffered request body; content-length follows
function envoy_on_request(handle)
  local b = handle:body()
  local old = b:length()
  local r = b:setBytes("replaced body")
  local h = handle:headers()
  h:add("x-r-old-len", old)
  h:add("x-r-new-len", b:length())
  h:add("x-r-returned", tostring(r))
  h:add("x-r-read-back", b:getBytes(0, b:length()))
end
