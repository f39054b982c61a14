-- Reference publish: Nchan's POST /pub/<channel> with a 100-byte body (the
-- message itself, as the gateway's "body" field holds it). Nchan keeps its
-- messages in memory (nginx shared memory): a 202 says it is queued.
-- env: BENCH_POST_CHANNEL (benchpost)
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local channel = os.getenv("BENCH_POST_CHANNEL") or "benchpost"

function init(args)
   seed_random()
   local text = string.rep("0123456789", 10) -- 100 bytes
   pick = pick_from({ wrk.format("POST", "/pub/" .. channel,
      { ["Content-Type"] = "text/plain" }, text) })
end

-- Defined at load time: wrk decides from the main script state, before
-- init() runs, whether requests are dynamic (a global request function).
function request()
   return pick()
end
