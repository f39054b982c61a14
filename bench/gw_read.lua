-- Gateway read: GET /v1/channels/<channel>/messages?since=N&limit=10 with N
-- drawn uniformly from 0..MAX_SINCE for every request, so each one is a real
-- indexed range read and not the same cached page.
-- env: BENCH_CHANNEL (bench), BENCH_MAX_SINCE (9990), BENCH_LIMIT (10)
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local channel = os.getenv("BENCH_CHANNEL") or "bench"
local max_since = tonumber(os.getenv("BENCH_MAX_SINCE") or "9990")
local limit = tonumber(os.getenv("BENCH_LIMIT") or "10")

function init(args)
   seed_random()
   local reqs = {}
   for n = 0, max_since do
      reqs[#reqs + 1] = wrk.format("GET", string.format(
         "/v1/channels/%s/messages?since=%d&limit=%d", channel, n, limit))
   end
   pick = pick_from(reqs)
end

-- Defined at load time: wrk decides from the main script state, before
-- init() runs, whether requests are dynamic (a global request function).
function request()
   return pick()
end
