--[[
  The Telnyx API rate limit (shared by every worker): each request reserves the next free send time,
  evenly spaced with no bursts, and waits for it; a 429 pauses everyone until Telnyx's reset.
  Keys: next free send time (ms, Redis time) and paused-until (ms).
]]

-- Reserves the next send and returns how many ms to wait for it (intervalMs 0: no rate limit, only
-- a pause holds requests back).
local function reserveSend(nextKey, pauseKey, intervalMs, now)
  local start = math.max(now, tonumber(redis.call('GET', pauseKey)) or 0)
  if intervalMs > 0 then
    start = math.max(start, tonumber(redis.call('GET', nextKey)) or 0)
    local nextFree = start + intervalMs
    redis.call('SET', nextKey, string.format('%.3f', nextFree), 'PX', math.ceil(nextFree - now) + 1000)
  end
  return math.ceil(start - now)
end

-- Pauses every request for ms (never shortening a longer pause); returns ms until the pause ends.
local function pauseSends(pauseKey, ms, now)
  local pausedUntil = tonumber(redis.call('GET', pauseKey)) or 0
  local untilMs = now + ms
  if untilMs > pausedUntil then
    redis.call('SET', pauseKey, string.format('%d', untilMs), 'PX', math.max(1, ms))
    pausedUntil = untilMs
  end
  return pausedUntil - now
end
