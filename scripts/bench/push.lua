-- wrk script for scripts/bench.sh: POSTs a signed GitHub push, every request
-- with its own X-GitHub-Delivery (a repeated id is answered `duplicate`
-- before anything is written, which would not measure the deploy path).
--
--   wrk -s push.lua URL -- BODY_FILE SIGNATURE_HEADER_VALUE RUN_TAG
--
-- Prints one machine-readable line at the end:
--   BENCH requests=N rps=R p50_us=A p90_us=B p99_us=C non2xx=S errors=E

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
  wrk.headers["X-GitHub-Event"] = "push"
  wrk.headers["X-GitHub-Hook-ID"] = "1"
  wrk.headers["X-Hub-Signature-256"] = args[2]
  prefix = args[3] .. "-" .. tostring(tid) .. "-"
  counter = 0
end

function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = prefix .. counter
  return wrk.format()
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d rps=%.0f p50_us=%d p90_us=%d p99_us=%d non2xx=%d errors=%d\n",
    summary.requests,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
