-- Replays pre-signed WeChat requests ("query<TAB>body" per line); each wrk thread takes its own
-- share of the lines, so no message id is sent twice. WRK_DELAY_MS paces each connection.
local counter, nthreads = 0, tonumber(os.getenv("WRK_THREADS") or "2")
local queries, bodies, idx = {}, {}, 0
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  local n = 0
  for line in io.lines(args[1]) do
    if n % nthreads == tid then
      local q, b = line:match("([^\t]*)\t(.*)")
      queries[#queries + 1], bodies[#bodies + 1] = q, b
    end
    n = n + 1
  end
end

function request()
  idx = idx + 1
  if idx > #queries then idx = 1 end
  return wrk.format("POST", "/wechat?" .. queries[idx], {["Content-Type"] = "text/xml"}, bodies[idx])
end

function delay()
  return delay_ms
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
