-- Reference write: webdis SET k2 <100-byte value>, as GET /SET/k2/<value>
-- (webdis's plain command form; the value is URL-safe so needs no escaping).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

function init(args)
   seed_random()
   local value = string.rep("0123456789", 10) -- 100 bytes
   pick = pick_from({ wrk.format("GET", "/SET/k2/" .. value) })
end

-- Defined at load time: wrk decides from the main script state, before
-- init() runs, whether requests are dynamic (a global request function).
function request()
   return pick()
end
