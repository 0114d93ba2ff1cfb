-- body() buffers: a request body over the buffer limit is refused before the script sees it
function envoy_on_request(handle)
  local b = handle:body()
  handle:headers():add("x-r-len", b:length())
end
