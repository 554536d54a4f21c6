--[[
  The Telnyx API rate limit, shared by every worker: each request reserves the next free send time
  (evenly spaced, no bursts) and waits for it; a 429 pauses everyone until Telnyx's reset.

  KEYS[1] next free send time (ms, Redis time)
  KEYS[2] paused until (ms)
  ARGV[1] 'take' | 'pause'
  ARGV[2] take: ms between requests (0 = no rate limit); pause: ms to pause for

  Returns the ms to wait before sending (take), or the ms until the pause ends (pause).
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pausedUntil = tonumber(redis.call('GET', KEYS[2])) or 0

if ARGV[1] == 'pause' then
  local untilMs = now + tonumber(ARGV[2])
  if untilMs > pausedUntil then
    redis.call('SET', KEYS[2], string.format('%d', untilMs), 'PX', math.max(1, untilMs - now))
    pausedUntil = untilMs
  end
  return pausedUntil - now
end

local start = math.max(now, pausedUntil)
local interval = tonumber(ARGV[2])
if interval > 0 then
  start = math.max(start, tonumber(redis.call('GET', KEYS[1])) or 0)
  local nextFree = start + interval
  redis.call('SET', KEYS[1], string.format('%.3f', nextFree), 'PX', math.ceil(nextFree - now) + 1000)
end
return math.ceil(start - now)
