-- pairs() over request and response headers: order, duplicates, pseudo-headers
function envoy_on_request(handle)
  local seen, pseudo = {}, {}
  for k, v in pairs(handle:headers()) do
    if k:sub(1, 1) == ":" then
      pseudo[#pseudo + 1] = k
    elseif k:sub(1, 4) == "x-t-" then
      seen[#seen + 1] = k .. "=" .. v
    end
  end
  table.sort(pseudo)
  handle:headers():add("x-r-iter", table.concat(seen, ";"))
  handle:headers():add("x-r-pseudo", table.concat(pseudo, ","))
end

function envoy_on_response(handle)
  local names = {}
  for k, v in pairs(handle:headers()) do
    if k:sub(1, 8) ~= "x-envoy-" then
      names[#names + 1] = k .. "=" .. v
    end
  end
  handle:headers():add("x-r-resp-iter", table.concat(names, ";"))
end
