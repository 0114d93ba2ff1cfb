-- importPublicKey() and verifySignature(): a DER key and signature arrive hex-encoded; with
-- x-t-case: bad, only a key that does not parse is imported
local function unhex(s)
  return (s:gsub("%x%x", function(c) return string.char(tonumber(c, 16)) end))
end

function envoy_on_request(handle)
  local h = handle:headers()
  if h:get("x-t-case") == "bad" then
    local bad = handle:importPublicKey("nope", 4):get()
    h:add("x-r-bad-key", tostring(bad))
    return
  end
  local key = unhex(h:get("x-t-key"))
  local sig = unhex(h:get("x-t-sig"))
  local data = h:get("x-t-data")
  local pk = handle:importPublicKey(key, #key):get()
  h:add("x-r-key", tostring(pk ~= nil))
  local function verify(hash, d, s)
    local ok, err = handle:verifySignature(hash, pk, s, #s, d, #d)
    return tostring(ok) .. ":" .. tostring(err)
  end
  h:add("x-r-valid", verify("sha256", data, sig))
  h:add("x-r-tampered", verify("sha256", data .. "x", sig))
  h:add("x-r-wrong-hash", verify("sha1", data, sig))
  h:add("x-r-unknown-hash", verify("md4", data, sig))
  h:add("x-r-bad-sig", verify("sha256", data, "short"))
end
