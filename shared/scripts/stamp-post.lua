--[[
  A POST of this attempt is about to go out: the attempt's `submitting` mark takes the time now (Redis
  TIME), so that a run taking over after a crash waits for this very POST to settle at Telnyx before
  asking about it, and any lookup time set for an earlier POST goes. Only the run the mark names may
  POST: a run whose job was taken over (its lock ran out while it was stalled) is superseded.

  KEYS[1] fax record
  ARGV[1] the attempt the job sends
  ARGV[2] this run's token

  Returns 1 (stamped: POST now), 0 (the fax is no longer queued at this attempt) or -1 (superseded)
]]
local state = redis.call('HMGET', KEYS[1], 'status', 'attempt')
if state[1] ~= 'queued' or state[2] ~= ARGV[1] then return 0 end
if not ownsMark(KEYS[1], ARGV[1], ARGV[2]) then return -1 end
writeMark(KEYS[1], ARGV[1], nowMs(), ARGV[2])
redis.call('HDEL', KEYS[1], 'lookup_after')
return 1
