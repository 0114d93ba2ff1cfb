-- a request header change clears the route cache: the request is routed again, to cluster alt
function envoy_on_request(handle)
  handle:headers():add("x-t-route", "alt")
end
