-- bodyChunks() on the response: each chunk rewritten in place with setBytes
function envoy_on_response(handle)
  for chunk in handle:bodyChunks() do
    chunk:setBytes(string.upper(chunk:getBytes(0, chunk:length())))
  end
end
