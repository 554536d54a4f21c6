--[[
  A worker that is shutting down gives back an attempt it claimed but has not sent: no POST of the
  attempt is on its way and none can have created the fax (there was none, or Telnyx answered 429,
  or Telnyx was asked and had none). Its slots go back (waking the next faxes in line) and its
  `submitting` mark is cleared, so the next run sends it without first asking Telnyx and a cancel is
  not held up. Nothing is done if the fax has moved on.

  KEYS[1] fax record
  ARGV[1] slot settings (JSON, shared/slots/settings.ts)
  ARGV[2] fax id
  ARGV[3] the attempt the job sends
  ARGV[4] this run's token: only the run the `submitting` mark names gives anything back

  Returns { 1, woken job ids }   handed back
          { 0, {} }              the fax is no longer queued at this attempt, or another run took the
                                 job over: nothing done
]]
S = cjson.decode(ARGV[1])
local record, faxId, attempt = KEYS[1], ARGV[2], ARGV[3]
local state = redis.call('HMGET', record, 'status', 'attempt')
if state[1] ~= 'queued' or state[2] ~= attempt or not ownsMark(record, attempt, ARGV[4]) then return { 0, {} } end
redis.call('HDEL', record, 'submitting', 'submitting_run', 'lookup_after')
local wake = {}
releaseSlots(faxId, nowMs(), wake)
return { 1, wake }
