--[[
  A POST of this attempt failed: counts it and, if it may have created the fax at Telnyx, sets when
  Telnyx may be asked about it (Redis TIME + delay). Only the run the `submitting` mark names does so.

  KEYS[1] fax record
  ARGV[1] the attempt
  ARGV[2] this run's token
  ARGV[3] ms from now before Telnyx may be asked ('' = the POST certainly created nothing)

  Returns the POSTs of this attempt that failed so far, or -1 (superseded, or the fax moved on)
]]
local state = redis.call('HMGET', KEYS[1], 'status', 'attempt')
if state[1] ~= 'queued' or state[2] ~= ARGV[1] or not ownsMark(KEYS[1], ARGV[1], ARGV[2]) then return -1 end
local tries = redis.call('HINCRBY', KEYS[1], 'post_tries', 1)
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'lookup_after', nowMs() + tonumber(ARGV[3])) end
return tries
