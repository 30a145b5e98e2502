-- wrk script of the load benchmark: POST /api/v1/orders, each request as one of the bench's
-- customers (a bearer token each, taken in turn) with an Idempotency-Key of its own and the
-- same small order. Arguments (after --): the tokens file, the body file, a run tag.
-- done() prints one line, "wrk-result {json}", that bench/load.py reads.

local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

local tokens, body, tag = {}, "", ""
local sent = 0
statuses = {}  -- a global: done() reads each thread's with thread:get

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  local file = assert(io.open(args[2], "r"))
  body = file:read("*a")
  file:close()
  tag = args[3] or "run"
  -- each thread starts at its own place in the tokens, so threads do not share customers in step
  sent = (thread_no - 1) * 7919
end

function request()
  sent = sent + 1
  local token = tokens[(sent % #tokens) + 1]
  return wrk.format("POST", "/api/v1/orders", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = tag .. "-" .. thread_no .. "-" .. sent,
  }, body)
end

function response(status, headers, response_body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[tostring(status)] = (counts[tostring(status)] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do parts[#parts + 1] = string.format('"%s": %d', status, n) end
  local e = summary.errors
  io.write(string.format(
    'wrk-result {"requests": %d, "duration_us": %d, "bytes": %d, "statuses": {%s}, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p95": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes, table.concat(parts, ", "),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
