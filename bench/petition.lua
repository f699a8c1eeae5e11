-- wrk script of `make bench` (bench/run.py writes no other): POSTs the bench petition, each with
-- a unique tag in its title, records when each request was sent, and holds an offered rate when
-- BENCH_RATE is set.
--
-- Environment (set by bench/run.py):
--   BENCH_BODY_FILE  the JSON petition, with the marker @TAG@ where the tag goes
--   BENCH_TAG        prefix of the tags of this run ("s" saturation, "r50" half rate, "w" warm-up)
--   BENCH_SENT_FILE  where done() writes "<tag>\t<unix time sent>" lines, one per request
--   BENCH_SUMMARY_FILE  where done() writes wrk's summary as JSON
--   BENCH_RATE       requests/s offered by all threads together; unset: as fast as answers come
--   BENCH_THREADS    the -t given to wrk (the rate is split evenly between threads)
--
-- Rate: each thread owns a schedule of send slots `threads / rate` seconds apart. wrk calls
-- delay() before every request of every connection (the first one too); the call claims the
-- next slot and waits until it. A connection that comes back late claims a slot already past
-- and sends at once, so the schedule catches up as long as connections are free: the offered
-- rate holds unless every connection is waiting for an answer (bench/run.py checks the achieved
-- rate against the offered one).
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")

local function now()
  ffi.C.clock_gettime(0, ts) -- CLOCK_REALTIME: comparable with file times and JetStream's
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local body = read_file(os.getenv("BENCH_BODY_FILE"))
  local at = body:find("@TAG@", 1, true)
  head, tail = body:sub(1, at - 1), body:sub(at + 5)
  prefix = (os.getenv("BENCH_TAG") or "x") .. tid .. "-"
  headers = { ["Content-Type"] = "application/json" }
  sent = {}
  count = 0
  local rate = tonumber(os.getenv("BENCH_RATE") or "")
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  if rate and rate > 0 then
    interval = nthreads / rate
  end
  slot = nil
end

function request()
  count = count + 1
  local tag = prefix .. count
  sent[tag] = now()
  return wrk.format("POST", nil, headers, head .. tag .. tail)
end

function delay()
  if not interval then
    return 0
  end
  local t = now()
  if slot == nil then
    slot = t
  else
    slot = slot + interval
  end
  local wait = slot - t
  if wait <= 0 then
    return 0
  end
  return math.floor(wait * 1000 + 0.5)
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("BENCH_SENT_FILE"), "w"))
  for _, thread in ipairs(threads) do
    for tag, at in pairs(thread:get("sent")) do
      out:write(tag, "\t", string.format("%.6f", at), "\n")
    end
  end
  out:close()
  local e = summary.errors
  local s = assert(io.open(os.getenv("BENCH_SUMMARY_FILE"), "w"))
  s:write(string.format(
    '{"duration_us": %d, "requests": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "latency_us": {"mean": %.1f, '
      .. '"max": %d, "50": %d, "90": %d, "95": %d, "99": %d, "99.9": %d}}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency:percentile(99.9)))
  s:close()
end
