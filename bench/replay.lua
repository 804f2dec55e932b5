-- Replays pre-signed raw HTTP requests (see bench/presign.py) with wrk.
--   WRK_REQUESTS  the request file: a count line, then per request a length line and the raw bytes
--   WRK_DELAY_MS  optional mean pause per connection between requests (fractional ms, for a fixed rate)
-- done() prints one JSON line starting with "BENCH_JSON " that bench/wrk_driver.py parses.

local path = os.getenv("WRK_REQUESTS")
local requests = {}
local count = 0
local f = assert(io.open(path, "rb"))
count = tonumber(f:read("*l"))
for k = 1, count do
  local len = tonumber(f:read("*l"))
  requests[k] = f:read(len)
end
f:close()

local i = 0

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  math.randomseed((tid or 1) * 7919 + os.time())
  i = ((tid or 1) * 7919) % count
end

function request()
  i = i % count + 1
  return requests[i]
end

local pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if pause > 0 then
  local base = math.floor(pause)
  local frac = pause - base
  function delay()
    if math.random() < frac then
      return base + 1
    end
    return base
  end
end

function done(summary, latency, requests_)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "mean_us": %.1f, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "p999_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
