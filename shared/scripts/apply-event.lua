--[[
  Takes one fax event in, atomically: drops it if already seen, moves the fax's status forward
  (never backward), keeps the in-flight set, appends to the fax's history and publishes it on the
  status stream. Nothing is published that was not also recorded, and the reverse.

  Channel slots (shared/scripts/lib/slots.lua, loaded in front of this script) change in the same step:
  a terminal status gives the fax's slots back and wakes the next faxes in line; any other news of the
  current attempt extends the lease. A failure the caller planned a retry for (ARGV[19], decided by
  the retry policy in shared/events.ts) does not end the fax: its slots go back and it is queued
  again as the next attempt, due then (through the outbox); a Telnyx channel-limit failure (ARGV[17])
  also lowers that scope's limit for a while and is not counted as a delivery attempt.

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
  ARGV[16] slot settings (JSON, shared/slots/settings.ts)
  ARGV[17] channel-limit scope the failure names ('' = not a channel-limit failure; else 'connection',
           'profile' or 'account')
  ARGV[18] '1': a final status that keeps the fax's slots until the lease runs out or a final webhook
           of the same attempt arrives (a POST that may have created a call failed for good)
  ARGV[19] for a failure: when to send the fax again (ms; '' = it ends here)
  ARGV[20] the same moment in ISO 8601, published as next_attempt_at
  ARGV[21] a new fax's record fields (JSON object of strings; '' = none): the record is created with
           this event, and its first job put in the outbox, unless it exists (then nothing is done)
  ARGV[22] '1': apply only while the fax is queued and its current attempt is not being submitted
           (a cancel that must not race a POST); otherwise nothing is done
  ARGV[23] a job run's token ('' = none): apply only while that run holds the attempt's submitting
           mark (a worker's own failure verdict: one superseded by another run decides nothing)

  Returns { code, stream entry id, status after, final (0/1), attempt, fax_id, telnyx_fax_id,
            job ids woken for freed slots, attempt queued again (0 = none), lowered scope ('' = none),
            its new limit, and for latency metrics (ms; 0 = unknown): when the fax was first due,
            when its current attempt was due, when that attempt was accepted by Telnyx, and now }
    code  0  duplicate: nothing done
          1  applied: the fax's status moved forward
          2  published only: out of order, unknown type or unknown fax
          3  the record to create exists already: nothing done
          4  refused by ARGV[22] (the fax is not queued, or its attempt is being submitted) or by
             ARGV[23] (another run holds the attempt)
]]
local record, stream, seen, history, inflight, telnyxMap = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local eventId, eventType, newStatus = ARGV[1], ARGV[2], ARGV[3]
local newRank = tonumber(ARGV[4])
local occurredAt, telnyxId, failureReason, payload = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local ttl = tonumber(ARGV[10])
local faxId, direction, detail = ARGV[11], ARGV[12], ARGV[13]
local maxlen = ARGV[14]
S = cjson.decode(ARGV[16])
local capacityKind = ARGV[17]
local keepSlots = ARGV[18] == '1'
local retryAt, retryAtIso = tonumber(ARGV[19]) or 0, ARGV[20]
local wake, requeued, loweredScope, loweredLimit, configuredLimitBefore = {}, 0, '', 0, -1
local tags, batchId = '', ''
local firstDue, attemptDue, submittedAt = 0, 0, 0

if ARGV[21] ~= '' then
  if redis.call('EXISTS', record) == 1 then return { 3, '', '', 0, 0, faxId, telnyxId, wake, 0, '', 0 } end
  local flat = {}
  local fields = cjson.decode(ARGV[21])
  for field, value in pairs(fields) do
    flat[#flat + 1] = field
    flat[#flat + 1] = value
  end
  redis.call('HSET', record, unpack(flat))
  if fields.batch_id and fields.batch_id ~= '' then
    redis.call('SADD', S.prefix .. ':batch:' .. fields.batch_id, faxId)
  end
  redis.call('ZADD', slotKey('outbox'), nowMs() + S.outboxGraceMs, faxId)
end

if ARGV[22] == '1' then
  local state = redis.call('HMGET', record, 'status', 'attempt', 'submitting')
  local mine = (state[2] or '') .. ':'
  if state[1] ~= 'queued' or (state[3] and string.sub(state[3], 1, #mine) == mine) then
    return { 4, '', state[1] or '', 0, 0, faxId, telnyxId, wake, 0, '', 0 }
  end
end

if ARGV[23] and ARGV[23] ~= '' and not ownsMark(record, ARGV[5], ARGV[23]) then
  return { 4, '', redis.call('HGET', record, 'status') or '', 0, 0, faxId, telnyxId, wake, 0, '', 0 }
end

if ttl > 0 then
  if redis.call('SET', seen, '1', 'NX', 'EX', ttl) == false then
    return { 0, '', '', 0, 0, faxId, telnyxId, wake, 0, '', 0 }
  end
end

local known = faxId ~= '' and redis.call('EXISTS', record) == 1
local code, final = 2, 0
local status, attempt, clientState = '', tonumber(ARGV[5]) or 0, ARGV[15]
local now = nowMs()

if known then
  local current = redis.call('HMGET', record, 'status', 'rank', 'attempt', 'client_state', 'telnyx_fax_id',
    'capacity_retries', 'tags', 'batch_id', 'created_at', 'due_at', 'next_attempt_at', 'submitted_at',
    'hold_until')
  tags = current[7] or ''
  batchId = current[8] or ''
  firstDue = tonumber(current[10]) or tonumber(current[9]) or 0
  -- Held for its sending window: due when the window opened.
  attemptDue = math.max(tonumber(current[11]) or firstDue, tonumber(current[13]) or 0)
  submittedAt = tonumber(current[12]) or 0
  status = current[1]
  local rank, curAttempt = tonumber(current[2]) or 0, tonumber(current[3]) or 0
  clientState = current[4] or ''
  if ARGV[5] == '' then attempt = curAttempt end
  if telnyxId == '' then telnyxId = current[5] or '' end
  -- A fax in a final state keeps it; otherwise (attempt, rank) only ever grows.
  local forward = newStatus ~= '' and rank < 100 and
    (attempt > curAttempt or (attempt == curAttempt and newRank > rank))
  -- A failure that keeps its slots (a call may exist) is never sent again from here.
  local requeue = forward and newStatus == 'failed' and attempt == curAttempt and retryAt > 0 and not keepSlots
  local capacity = requeue and capacityKind ~= ''
  -- The record keeps the Telnyx id of its current attempt only: news of an older attempt's call must
  -- never make reconciliation look at the wrong call.
  if telnyxId ~= '' and not requeue and attempt == curAttempt and (current[5] == false or current[5] == '') then
    redis.call('HSET', record, 'telnyx_fax_id', telnyxId)
  end
  local holding = (redis.call('HGET', record, 'slots') or '') ~= ''
  if requeue then
    if capacity then
      local scope = heldScope(faxId, capacityKind)
      if scope then
        local limit, configured = lowerLimit(scope, now)
        if limit then loweredScope, loweredLimit, configuredLimitBefore = scope, limit, configured end
      end
      redis.call('HINCRBY', record, 'capacity_retries', 1)
    end
    releaseSlots(faxId, now, wake)
    requeued = attempt + 1
    code, status = 1, 'queued'
    redis.call('HSET', record, 'status', 'queued', 'rank', 0, 'attempt', requeued, 'updated_at', now,
      'next_attempt_at', retryAt, 'last_failure_reason', failureReason)
    -- The next attempt starts with no failed POSTs and no lookup pending.
    redis.call('HDEL', record, 'telnyx_fax_id', 'submitted_at', 'post_tries', 'lookup_after')
    redis.call('ZREM', inflight, faxId)
    redis.call('ZADD', slotKey('outbox'), retryAt + S.outboxGraceMs, faxId)
    if detail == '' then
      if capacity then
        detail = 'Telnyx refused the call over its channel limit; sent again as attempt ' .. requeued
      else
        detail = 'sent again as attempt ' .. requeued .. ' at ' .. retryAtIso
      end
    end
  elseif forward then
    code, status = 1, newStatus
    redis.call('HSET', record, 'status', newStatus, 'rank', newRank, 'attempt', attempt, 'updated_at', now)
    redis.call('HDEL', record, 'next_attempt_at')
    if failureReason ~= '' then redis.call('HSET', record, 'failure_reason', failureReason) end
    if detail ~= '' then redis.call('HSET', record, 'detail', detail) end
    if newStatus == 'submitted' then redis.call('HSET', record, 'submitted_at', now) end
    if newRank >= 100 then
      final = 1
      redis.call('ZREM', inflight, faxId)
      if keepSlots and holding then
        redis.call('ZADD', slotKey('leases'), now + S.leaseMs, faxId)
      else
        releaseSlots(faxId, now, wake)
      end
      local waitedFor = unpark(faxId)
      if waitedFor then wakeScope(waitedFor, now, wake) end
    elseif telnyxId ~= '' then
      redis.call('ZADD', inflight, 'NX', now, faxId)
    end
  elseif rank >= 100 and holding and attempt == curAttempt then
    -- Ended, but its slots were kept for a call that may exist: that call's news decides.
    if newRank >= 100 then
      releaseSlots(faxId, now, wake)
    else
      redis.call('ZADD', slotKey('leases'), now + S.leaseMs, faxId)
    end
  end
  if final == 0 and not requeue and attempt == curAttempt and holding then
    redis.call('ZADD', slotKey('leases'), 'XX', now + S.leaseMs, faxId)
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
if requeued > 0 then
  fields[#fields + 1] = 'next_attempt_at'
  fields[#fields + 1] = retryAtIso
end
if tags ~= '' then
  fields[#fields + 1] = 'tags'
  fields[#fields + 1] = tags
end
if batchId ~= '' then
  fields[#fields + 1] = 'batch_id'
  fields[#fields + 1] = batchId
end
local entryId = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', unpack(fields))

if known then
  redis.call('RPUSH', history, cjson.encode({
    stream_id = entryId, event_id = eventId, event_type = eventType, status = status,
    occurred_at = occurredAt, attempt = attempt, failure_reason = failureReason ~= '' and failureReason or nil,
    final = final == 1, next_attempt_at = requeued > 0 and retryAtIso or nil,
  }))
end

if loweredScope ~= '' then
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
    'event_id', eventId .. ':limit', 'event_type', 'fax.channel_limit.lowered', 'fax_id', '',
    'telnyx_fax_id', '', 'status', '', 'occurred_at', occurredAt, 'attempt', '0',
    'failure_reason', failureReason, 'final', 'false', 'direction', direction, 'client_state', '',
    'payload', cjson.encode({
      scope = loweredScope, limit = loweredLimit,
      configured_limit = configuredLimitBefore >= 0 and configuredLimitBefore or cjson.null,
      until_ms = now + S.lowerMs, fax_id = faxId,
    }),
    'detail', 'Telnyx refused a call over its limit for ' .. loweredScope .. ': using ' .. loweredLimit ..
      ' for ' .. math.floor(S.lowerMs / 1000) .. ' s')
end

return { code, entryId, status, final, attempt, faxId, telnyxId, wake, requeued, loweredScope, loweredLimit,
  firstDue, attemptDue, submittedAt, now }
