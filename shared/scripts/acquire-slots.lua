--[[
  A worker's claim on one attempt of a fax, in one step: if the fax is still queued at that attempt,
  take a slot in every scope that applies to it, all or none, and reserve its turn under the Telnyx
  rate limit (lib/rate.lua); or, when a scope is full, put the fax in that scope's line (park it).
  Faxes earlier in a scope's line keep their turn: a newcomer only takes a slot that no earlier
  waiting fax is owed.

  KEYS[1] fax record
  KEYS[2] rate limit: next free send time
  KEYS[3] rate limit: paused until
  ARGV[1] slot settings (JSON, shared/slots/settings.ts)
  ARGV[2] fax id
  ARGV[3] BullMQ job id (to wake it when a slot frees)
  ARGV[4] the attempt the job sends
  ARGV[5] ms between Telnyx requests (0 = no rate limit)
  ARGV[6] this run's token (BullMQ's lock token): the run the `submitting` mark names (lib/slots.lua)

  A line is ordered by arrival plus a head start by priority (S.priorityDelayMs: high 0, normal and
  bulk later), so urgent faxes go first when channels are scarce and a fax that has waited longer than
  its priority's delay goes before newer urgent ones: nothing starves.

  A claim that holds slots also marks the attempt as being submitted (`submitting` = attempt:time);
  finding that mark already there means an earlier run of this attempt may have POSTed it (a crash,
  a timeout): the worker then asks Telnyx before sending again.

  Returns { 1, request, ms to wait before the POST, woken job ids, when an earlier run of this attempt
            began submitting (ms; 0 = none), created_at, POSTs of this attempt that failed, when Telnyx
            may be asked about the last of them (ms; 0 = not set), now (Redis TIME, ms) }
                                                                      slots held (also when already held: a redelivered job)
          { 0, request, scope, woken job ids }                        parked waiting for `scope`
          { 2, status, attempt }                                      not queued at this attempt
          { 3, due at (ms) }                                          scheduled for later (send_at, or held
                                                                      while its sending window is closed)
          { -1 }                                                      no such fax
]]
S = cjson.decode(ARGV[1])
local record, faxId, jobId = KEYS[1], ARGV[2], ARGV[3]
local fields = redis.call('HMGET', record, 'status', 'attempt', 'request', 'slots', 'created_at',
  'post_tries', 'lookup_after', 'due_at', 'hold_until')
-- A scheduled fax counts from when it is due (its place in line, its time-to-live).
if fields[8] and fields[8] ~= '' then fields[5] = fields[8] end
if not fields[1] or not fields[3] then return { -1 } end
if fields[1] ~= 'queued' or fields[2] ~= ARGV[4] then return { 2, fields[1], fields[2] or '' } end
local notBefore = math.max(tonumber(fields[8]) or 0, tonumber(fields[9]) or 0)
if notBefore > nowMs() then return { 3, string.format('%d', notBefore) } end
local request = fields[3]
local decoded = cjson.decode(request)
local connection, destination = tostring(decoded.connection_id), tostring(decoded.to)
local now = nowMs()
local wake = {}

-- Marks this attempt as being submitted by this run; returns when an earlier run began doing so
-- (0 = never), taking its mark over with that time.
local function markSubmitting()
  local since, owner = readMark(record, ARGV[4])
  if since then
    if owner ~= ARGV[6] then writeMark(record, ARGV[4], since, ARGV[6]) end
    return since
  end
  writeMark(record, ARGV[4], now, ARGV[6])
  -- A lookup time belongs to the mark it was set under: a fresh mark starts without one.
  redis.call('HDEL', record, 'lookup_after')
  return 0
end

if fields[4] and fields[4] ~= '' then
  redis.call('ZADD', slotKey('leases'), now + S.leaseMs, faxId)
  return { 1, request, reserveSend(KEYS[2], KEYS[3], tonumber(ARGV[5]), now), wake, markSubmitting(),
    tonumber(fields[5]) or 0, tonumber(fields[6]) or 0, tonumber(fields[7]) or 0, now }
end

local scopes = { 'destination:' .. destination, 'connection:' .. connection }
local profile = redis.call('HGET', slotKey('limits'), 'profile-of:' .. connection)
if profile then scopes[#scopes + 1] = 'profile:' .. profile end
scopes[#scopes + 1] = 'account'

local seq = tonumber(redis.call('HGET', record, 'seq'))
if not seq then
  seq = redis.call('INCR', slotKey('seq'))
  redis.call('HSET', record, 'seq', seq)
end
local delay = S.priorityDelayMs[tostring(decoded.priority or 'normal')] or 0
local order = ((tonumber(fields[5]) or 0) + delay) * 1024 + seq % 1024

local blocked
for _, scope in ipairs(scopes) do
  local limit = effectiveLimit(scope, now)
  if limit >= 0 then
    local ahead = redis.call('ZCOUNT', slotKey('parked:' .. scope), '-inf', '(' .. string.format('%.0f', order))
    if redis.call('ZCARD', slotKey('held:' .. scope)) + ahead >= limit then
      blocked = scope
      break
    end
  end
end

local previous = unpark(faxId)
if blocked then
  redis.call('ZADD', slotKey('parked:' .. blocked), order, faxId)
  redis.call('SADD', slotKey('waiting'), blocked)
  redis.call('HSET', record, 'parked_on', blocked, 'job_id', jobId)
  if previous and previous ~= blocked then wakeScope(previous, now, wake) end
  wakeScope(blocked, now, wake)
  return { 0, request, blocked, wake }
end

for _, scope in ipairs(scopes) do
  redis.call('ZADD', slotKey('held:' .. scope), now, faxId)
  redis.call('SADD', slotKey('active'), scope)
end
redis.call('HSET', record, 'slots', table.concat(scopes, '\n'), 'job_id', jobId)
redis.call('ZADD', slotKey('leases'), now + S.leaseMs, faxId)
return { 1, request, reserveSend(KEYS[2], KEYS[3], tonumber(ARGV[5]), now), wake, markSubmitting(),
  tonumber(fields[5]) or 0, tonumber(fields[6]) or 0, tonumber(fields[7]) or 0, now }
