--[[
  Gives back a fax's slots outside of a status change: its POST failed without creating a fax, or
  reconciliation found no call behind the lease. Idempotent.

  KEYS[1] fax record
  ARGV[1] slot settings (JSON)
  ARGV[2] fax id
  ARGV[3] attempt the caller saw ('' = any): nothing is freed if the fax has moved on since
  ARGV[4] hold the fax until then (ms; '' = no hold): nothing was sent, the fax is not to be sent
          before that time (its sending window is closed); the attempt's submitting mark is cleared
  ARGV[5] the run's token ('' = any): a job run frees nothing once another run has taken its job over
  ARGV[6] '1': that run's POST certainly created nothing, and no earlier POST of the attempt did (it
          asked Telnyx first, or there was none): the mark goes, so the next run sends without a lookup

  Returns { scopes freed, woken job ids }
]]
S = cjson.decode(ARGV[1])
local record, faxId = KEYS[1], ARGV[2]
if ARGV[3] ~= '' and redis.call('HGET', record, 'attempt') ~= ARGV[3] then return { 0, {} } end
if ARGV[5] and ARGV[5] ~= '' and not ownsMark(record, ARGV[3], ARGV[5]) then return { 0, {} } end
local wake = {}
local freed = releaseSlots(faxId, nowMs(), wake)
if ARGV[4] and ARGV[4] ~= '' then
  redis.call('HSET', record, 'hold_until', ARGV[4])
  redis.call('HDEL', record, 'submitting', 'submitting_run', 'lookup_after')
elseif ARGV[6] == '1' and ARGV[5] and ARGV[5] ~= '' then
  redis.call('HDEL', record, 'submitting', 'submitting_run', 'lookup_after')
end
return { freed, wake }
