-- respond(): a local reply from the request handler (headers, multi-valued, body); code after
-- it never runs; the case comes from the request
function envoy_on_request(handle)
  local case = handle:headers():get("x-t-case")
  if case == "nobody" then
    handle:respond({[":status"] = "200", ["x-r-case"] = case})
  elseif case == "empty" then
    handle:respond({[":status"] = "204", ["x-r-case"] = case}, "")
  elseif case == "after_body" then
    local b = handle:body()
    handle:respond({[":status"] = "200", ["x-r-case"] = case}, "got " .. b:length())
  else
    handle:respond({[":status"] = "403", ["x-r-case"] = "basic", ["x-r-number"] = 7,
                    ["set-cookie"] = {"a=1", "b=2"}}, "nope")
  end
  handle:headers():add("x-r-never", "1")
end

function envoy_on_response(handle)
  handle:headers():add("x-r-resp-ran", "yes")
end
