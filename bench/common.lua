-- Shared by every wrk script of bench/rest.sh: one machine-readable summary
-- line at the end of a run, and a request picker that costs the same for
-- every target (a random index into a table of pre-formatted requests), so
-- wrk's own CPU use is the same whether it drives the gateway or webdis.
--
-- The summary line, parsed by rest.sh:
--   BENCH requests=N duration_us=N rps=F p50_us=N p99_us=N max_us=N
--         status_errors=N connect=N read=N write=N timeout=N

local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("thread_id", counter)
end

-- Seeds the per-thread generator so the two threads draw different sequences.
function seed_random()
   local id = thread_id or 0
   math.randomseed(os.time() + id * 7919)
   math.random(); math.random()
end

-- requests: a non-empty array of strings made with wrk.format().
function pick_from(requests)
   local n = #requests
   if n == 1 then
      local only = requests[1]
      return function() return only end
   end
   local random = math.random
   return function() return requests[random(1, n)] end
end

function done(summary, latency, requests)
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d " ..
      "status_errors=%d connect=%d read=%d write=%d timeout=%d\n",
      summary.requests, summary.duration, summary.requests / secs,
      latency:percentile(50), latency:percentile(99), latency.max,
      e.status, e.connect, e.read, e.write, e.timeout))
end
