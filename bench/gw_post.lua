-- Gateway durable publish: POST /v1/channels/<channel>/messages with a JSON
-- body whose "body" field is 100 bytes. A 201 means the message's SQLite
-- transaction has committed (synchronous=FULL: fsync at commit).
-- env: BENCH_POST_CHANNEL (benchpost)
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local channel = os.getenv("BENCH_POST_CHANNEL") or "benchpost"

function init(args)
   seed_random()
   local text = string.rep("0123456789", 10) -- 100 bytes
   local body = '{"sender":"bench","body":"' .. text .. '"}'
   pick = pick_from({ wrk.format("POST", "/v1/channels/" .. channel .. "/messages",
      { ["Content-Type"] = "application/json" }, body) })
end

-- Defined at load time: wrk decides from the main script state, before
-- init() runs, whether requests are dynamic (a global request function).
function request()
   return pick()
end
