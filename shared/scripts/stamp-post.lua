--[[
  A POST of this attempt is about to go out after a wait (its rate-limit turn, a 429 pause, a lookup
  at Telnyx): the attempt's `submitting` mark takes the time now (Redis TIME), so that a run taking
  over after a crash waits for this very POST to settle at Telnyx before asking about it, and any
  lookup time set for an earlier POST goes. Nothing is done if the fax has moved on.

  KEYS[1] fax record
  ARGV[1] the attempt the job sends

  Returns 1 (stamped) or 0 (the fax is no longer queued at this attempt: do not POST)
]]
local state = redis.call('HMGET', KEYS[1], 'status', 'attempt')
if state[1] ~= 'queued' or state[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'submitting', ARGV[1] .. ':' .. string.format('%d', nowMs()))
redis.call('HDEL', KEYS[1], 'lookup_after')
return 1
