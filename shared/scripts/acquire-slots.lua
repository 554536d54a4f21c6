--[[
  Takes a slot in every scope that applies to a fax, all or none, before its POST to Telnyx; or, when a
  scope is full, puts the fax in that scope's line (parks it). Faxes earlier in a scope's line keep
  their turn: a newcomer only takes a slot that no earlier waiting fax is owed.

  KEYS[1] fax record
  ARGV[1] slot settings (JSON, shared/slots/settings.ts)
  ARGV[2] fax id
  ARGV[3] BullMQ job id (to wake it when a slot frees)
  ARGV[4] connection id
  ARGV[5] destination (`to`)
  ARGV[6] priority (0 = none; lower goes first, as in BullMQ)

  Returns { 1, '', woken job ids }           slots held (also when already held: a redelivered job)
          { 0, scope, woken job ids }        parked waiting for `scope`
]]
S = cjson.decode(ARGV[1])
local record, faxId, jobId, connection, destination = KEYS[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local priority = tonumber(ARGV[6]) or 0
local now = nowMs()
local wake = {}

local holding = redis.call('HGET', record, 'slots')
if holding and holding ~= '' then
  redis.call('ZADD', slotKey('leases'), now + S.leaseMs, faxId)
  return { 1, '', wake }
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
local order = priority * 4294967296 + seq

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
  return { 0, blocked, wake }
end

for _, scope in ipairs(scopes) do
  redis.call('ZADD', slotKey('held:' .. scope), now, faxId)
  redis.call('SADD', slotKey('active'), scope)
end
redis.call('HSET', record, 'slots', table.concat(scopes, '\n'), 'job_id', jobId)
redis.call('ZADD', slotKey('leases'), now + S.leaseMs, faxId)
return { 1, '', wake }
