--[[
  Takes one fax event in, atomically: drops it if already seen, moves the fax's status forward
  (never backward), keeps the in-flight set, appends to the fax's history and publishes it on the
  status stream. Nothing is published that was not also recorded, and the reverse.

  KEYS[1] fax record (hash; may not exist: unknown fax)
  KEYS[2] status stream
  KEYS[3] seen-event marker (dedupe by Telnyx event id)
  KEYS[4] fax history (list)
  KEYS[5] in-flight set (zset)
  KEYS[6] Telnyx fax id -> our fax id

  ARGV[1]  event_id
  ARGV[2]  event_type
  ARGV[3]  status this event moves the fax to ('' = none: published, changes nothing)
  ARGV[4]  rank of that status (higher = later in the lifecycle; terminal = 100)
  ARGV[5]  attempt ('' = the record's current attempt)
  ARGV[6]  occurred_at (ISO 8601)
  ARGV[7]  telnyx_fax_id ('' = unknown)
  ARGV[8]  failure_reason ('' = none)
  ARGV[9]  payload (JSON)
  ARGV[10] seconds to remember the event id (0 = no dedupe: our own events)
  ARGV[11] fax_id ('' = not ours)
  ARGV[12] direction
  ARGV[13] detail ('' = none)
  ARGV[14] stream MAXLEN (approximate trim)
  ARGV[15] client_state to publish when the fax is not ours ('' = none)

  Returns { code, stream entry id, status after, final (0/1), attempt, fax_id, telnyx_fax_id }
    code  0  duplicate: nothing done
          1  applied: the fax's status moved forward
          2  published only: out of order, unknown type or unknown fax
]]
local record, stream, seen, history, inflight, telnyxMap = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local eventId, eventType, newStatus = ARGV[1], ARGV[2], ARGV[3]
local newRank = tonumber(ARGV[4])
local occurredAt, telnyxId, failureReason, payload = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local ttl = tonumber(ARGV[10])
local faxId, direction, detail = ARGV[11], ARGV[12], ARGV[13]
local maxlen = ARGV[14]

if ttl > 0 then
  if redis.call('SET', seen, '1', 'NX', 'EX', ttl) == false then
    return { 0, '', '', 0, 0, faxId, telnyxId }
  end
end

local known = faxId ~= '' and redis.call('EXISTS', record) == 1
local code, final = 2, 0
local status, attempt, clientState = '', tonumber(ARGV[5]) or 0, ARGV[15]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

if known then
  local current = redis.call('HMGET', record, 'status', 'rank', 'attempt', 'client_state', 'telnyx_fax_id')
  status = current[1]
  local rank, curAttempt = tonumber(current[2]) or 0, tonumber(current[3]) or 0
  clientState = current[4] or ''
  if ARGV[5] == '' then attempt = curAttempt end
  if telnyxId == '' then telnyxId = current[5] or '' end
  -- A fax in a final state keeps it; otherwise (attempt, rank) only ever grows.
  local forward = newStatus ~= '' and rank < 100 and
    (attempt > curAttempt or (attempt == curAttempt and newRank > rank))
  if telnyxId ~= '' and (current[5] == false or current[5] == '') then
    redis.call('HSET', record, 'telnyx_fax_id', telnyxId)
  end
  if forward then
    code, status = 1, newStatus
    redis.call('HSET', record, 'status', newStatus, 'rank', newRank, 'attempt', attempt, 'updated_at', now)
    if failureReason ~= '' then redis.call('HSET', record, 'failure_reason', failureReason) end
    if detail ~= '' then redis.call('HSET', record, 'detail', detail) end
    if newRank >= 100 then
      final = 1
      redis.call('ZREM', inflight, faxId)
    elseif telnyxId ~= '' then
      redis.call('ZADD', inflight, 'NX', now, faxId)
    end
  end
  if telnyxId ~= '' then redis.call('SET', telnyxMap, faxId, 'EX', 2592000) end
else
  status = newStatus
  faxId = ''
end

local fields = {
  'event_id', eventId, 'event_type', eventType, 'fax_id', faxId, 'telnyx_fax_id', telnyxId,
  'status', status, 'occurred_at', occurredAt, 'attempt', tostring(attempt),
  'failure_reason', failureReason, 'final', final == 1 and 'true' or 'false',
  'direction', direction, 'client_state', clientState, 'payload', payload,
}
if detail ~= '' then
  fields[#fields + 1] = 'detail'
  fields[#fields + 1] = detail
end
local entryId = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', unpack(fields))

if known then
  redis.call('RPUSH', history, cjson.encode({
    stream_id = entryId, event_id = eventId, event_type = eventType, status = status,
    occurred_at = occurredAt, attempt = attempt, failure_reason = failureReason ~= '' and failureReason or nil,
    final = final == 1,
  }))
end

return { code, entryId, status, final, attempt, faxId, telnyxId }
