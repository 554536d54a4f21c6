--[[
  One request's turn under the shared Telnyx rate limit, or a pause after a 429 (lib/rate.lua).

  KEYS[1] next free send time
  KEYS[2] paused until
  ARGV[1] 'take' | 'pause'
  ARGV[2] take: ms between requests (0 = no rate limit); pause: ms to pause for

  Returns the ms to wait before sending (take), or the ms until the pause ends (pause).
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == 'pause' then return pauseSends(KEYS[2], tonumber(ARGV[2]), now) end
return reserveSend(KEYS[1], KEYS[2], tonumber(ARGV[2]), now)
