-- respond() in the response handler: an error in Envoy (fail-open), allowed in Switchyard
function envoy_on_response(handle)
  handle:headers():add("x-r-before", "yes")
  handle:respond({[":status"] = "418", ["x-r-responded"] = "yes"}, "teapot")
end
