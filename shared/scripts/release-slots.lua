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
  ARGV[7] reconciliation's guard ('' = none): '=' followed by the `submitting_run` it read ('=' alone:
          none). Nothing is freed unless the fax is still queued, with no Telnyx id, and no run has
          claimed it since that read (a run that took the job over meanwhile may be POSTing, or done).
          What is freed puts the fax in the outbox, due now: should the caller die before it queues
          the fax's job again, the slot keeper does.

  Returns { scopes freed, woken job ids }
]]
S = cjson.decode(ARGV[1])
local record, faxId = KEYS[1], ARGV[2]
if ARGV[3] ~= '' and redis.call('HGET', record, 'attempt') ~= ARGV[3] then return { 0, {} } end
if ARGV[5] and ARGV[5] ~= '' and not ownsMark(record, ARGV[3], ARGV[5]) then return { 0, {} } end
local guarded = ARGV[7] and ARGV[7] ~= ''
if guarded then
  local fields = redis.call('HMGET', record, 'status', 'telnyx_fax_id', 'submitting_run')
  if fields[1] ~= 'queued' or (fields[2] and fields[2] ~= '') then return { 0, {} } end
  if '=' .. (fields[3] or '') ~= ARGV[7] then return { 0, {} } end
end
local wake = {}
local now = nowMs()
local freed = releaseSlots(faxId, now, wake)
if guarded then redis.call('ZADD', slotKey('outbox'), now, faxId) end
if ARGV[4] and ARGV[4] ~= '' then
  redis.call('HSET', record, 'hold_until', ARGV[4])
  redis.call('HDEL', record, 'submitting', 'submitting_run', 'lookup_after')
elseif ARGV[6] == '1' and ARGV[5] and ARGV[5] ~= '' then
  redis.call('HDEL', record, 'submitting', 'submitting_run', 'lookup_after')
end
return { freed, wake }
