-- Reference read: webdis GET /GET/k (a 100-byte value in redis).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

function init(args)
   seed_random()
   pick = pick_from({ wrk.format("GET", "/GET/k") })
end

-- Defined at load time: wrk decides from the main script state, before
-- init() runs, whether requests are dynamic (a global request function).
function request()
   return pick()
end
