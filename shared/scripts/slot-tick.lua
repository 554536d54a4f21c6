--[[
  The slot keeper's periodic work, for whichever worker runs it (claims keep two from doing the same):
  leases past their expiry (to reconcile with Telnyx), woken faxes that never took their slot (to wake
  again), outbox entries nobody queued, and, at most once per sweep period across all workers, a pass
  over every waiting scope to wake faxes for slots that freed without a release (a limit raised, a
  lowered limit expired).

  KEYS[1] leases zset (names the hash slot; every other key is built from the prefix)
  ARGV[1] slot settings (JSON)
  ARGV[2] at most this many of each kind per call
  ARGV[3] sweep period (ms)

  Returns { fax ids to reconcile, job ids to promote (the sweep's), { fax id, attempt, due ms, ... } to queue,
            { fax id, job id, ... } woken long ago without taking their slot (their job may be gone) }
]]
S = cjson.decode(ARGV[1])
local batch, sweepMs = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = nowMs()

local leases = slotKey('leases')
local due = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, batch)
for _, faxId in ipairs(due) do redis.call('ZADD', leases, now + S.claimMs, faxId) end

local wake, stuck = {}, {}
local woken = slotKey('woken')
for _, faxId in ipairs(redis.call('ZRANGEBYSCORE', woken, '-inf', now - S.wakeRetryMs, 'LIMIT', 0, batch)) do
  local record = faxKey(faxId)
  local jobId = redis.call('HGET', record, 'job_id')
  if redis.call('HEXISTS', record, 'parked_on') == 1 and jobId then
    redis.call('ZADD', woken, now, faxId)
    stuck[#stuck + 1] = faxId
    stuck[#stuck + 1] = jobId
  else
    redis.call('ZREM', woken, faxId)
  end
end

local outbox = slotKey('outbox')
local queue = {}
for _, faxId in ipairs(redis.call('ZRANGEBYSCORE', outbox, '-inf', now, 'LIMIT', 0, batch)) do
  local fields = redis.call('HMGET', faxKey(faxId), 'attempt', 'next_attempt_at')
  if fields[1] then
    redis.call('ZADD', outbox, now + S.outboxGraceMs, faxId)
    queue[#queue + 1] = faxId
    queue[#queue + 1] = fields[1]
    queue[#queue + 1] = fields[2] or '0'
  else
    redis.call('ZREM', outbox, faxId)
  end
end

if redis.call('SET', slotKey('sweep'), '1', 'NX', 'PX', sweepMs) then wakeAllWaiting(now, wake) end

return { due, wake, queue, stuck }
