-- wrk script: counts the requests wrk hands to its sockets, so that the harness can check the
-- client's figures against the upstream's own request counter. A request in flight when the
-- run ends is sent but not completed, so the upstream's count must lie in [completed, sent].
-- The request bytes are made once per thread and reused, as wrk does without a script.
-- Script arguments `POST N` (after wrk's `--`) make every request a POST with an N-byte body
-- ('b' repeated, the bytes sy-openloop sends; wrk.format adds its Content-Length).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  sent = 0
  if args[1] == "POST" then
    req = wrk.format("POST", nil, {["Content-Type"] = "application/octet-stream"},
                     string.rep("b", tonumber(args[2])))
  else
    req = wrk.format()
  end
end

function request()
  sent = sent + 1
  return req
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + t:get("sent")
  end
  local e = summary.errors
  io.write(string.format(
    'SYBENCH {"sent":%d,"completed":%d,"bytes":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p99":%d,"max":%d}}\n',
    total, summary.requests, summary.bytes, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
