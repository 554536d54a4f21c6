--[[
  Channel slots: helpers shared by the scripts that take, give back and wait for slots. This file is
  put in front of each such script when it is loaded (shared/redis.ts); the script sets S (the slot
  settings, shared/slots/settings.ts) before calling anything here.

  A scope is `account`, `connection:<id>`, `profile:<name>` or `destination:<number>`. Key names
  (mirrored in shared/keys.ts), under S.prefix:
    :slots:limits          hash   limits set at run time
    :slots:lowered         hash   scope -> '<limit>:<until ms>' after Telnyx said a limit was exceeded
    :slots:held:<scope>    zset   faxes holding a slot (score: when taken)
    :slots:parked:<scope>  zset   faxes waiting for a slot (score: priority * 2^32 + arrival)
    :slots:leases          zset   fax -> lease expiry (ms)
    :slots:woken           zset   fax -> when it was woken for a freed slot
    :slots:active          set    scopes with holders
    :slots:waiting         set    scopes with waiting faxes
    :slots:outbox          zset   fax -> due: its next job still has to be queued
    :slots:seq             string arrival counter (keeps each line in order)
  The limits hash also holds `default:<kind>`: the defaults the processes were started with.
    :slots:sweep           string claim of the periodic sweep
  Fax record fields: slots (held scopes, one per line), parked_on, seq, job_id, capacity_retries,
  due_at (a scheduled fax's send_at; its place in line and time-to-live count from it).
  Times are Redis server time, never a worker's clock.
  On a Redis Cluster the prefix holds the hash tag of every key the scripts declare (config.ts makes
  sure of it), so the names built here are in the declared keys' slot, on the node the script runs on.
]]
local S

local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

--[[
  The `submitting` mark of a fax: `<attempt>:<ms>` — the attempt may be on its way to Telnyx since <ms>
  (its last POST, or the claim) — and beside it `submitting_run` = `<run>:<ms>`: the BullMQ token of the
  job run that holds it, the only run allowed to POST the attempt, give it back, hold it or fail it, and
  the mark's time it last wrote. A run that takes a job over from one whose lock ran out takes the mark
  over, keeping its time: it asks Telnyx first, and the old run, should it wake, finds itself
  superseded and sends nothing. (The run is a field of its own so that a worker of an earlier version
  still reads the mark and asks Telnyx first; and since such a worker rewrites the mark without the
  field, a mark whose time is not the one the field names is owned by nobody here.)
]]
local function readMark(record, attempt)
  local mark = redis.call('HMGET', record, 'submitting', 'submitting_run')
  local mine = attempt .. ':'
  if not mark[1] or string.sub(mark[1], 1, #mine) ~= mine then return nil, nil end
  local ms = tonumber(string.match(string.sub(mark[1], #mine + 1), '^(%d+)'))
  local owner = ''
  if ms and mark[2] then
    local suffix = ':' .. string.format('%d', ms)
    if string.sub(mark[2], -#suffix) == suffix then owner = string.sub(mark[2], 1, #mark[2] - #suffix) end
  end
  return ms, owner
end

local function ownsMark(record, attempt, run)
  local ms, owner = readMark(record, attempt)
  return ms ~= nil and owner == run
end

-- Writes the attempt's mark at `ms`, held by `run`.
local function writeMark(record, attempt, ms, run)
  local at = string.format('%d', ms)
  redis.call('HSET', record, 'submitting', attempt .. ':' .. at, 'submitting_run', run .. ':' .. at)
end

local function slotKey(name) return S.prefix .. ':slots:' .. name end
local function faxKey(faxId) return S.prefix .. ':fax:' .. faxId end

local function parseLimit(value)
  if value == false or value == nil then return nil end
  if value == 'none' then return -1 end
  return tonumber(value)
end

-- The default of a kind of scope: the one the processes published (`default:<kind>`, the latest
-- started wins, so all agree), else this process's environment.
local function defaultLimit(kind)
  return parseLimit(redis.call('HGET', slotKey('limits'), 'default:' .. kind)) or S.defaults[kind] or -1
end

-- The limit configured for a scope: set at run time, else the default. -1 = none.
local function configuredLimit(scope)
  local kind, id = string.match(scope, '^([^:]+):?(.*)$')
  local limits = slotKey('limits')
  if kind == 'account' or kind == 'destination' then
    return parseLimit(redis.call('HGET', limits, kind)) or defaultLimit(kind)
  elseif kind == 'connection' then
    return parseLimit(redis.call('HGET', limits, 'connection:' .. id)) or defaultLimit('connection')
  elseif kind == 'profile' then
    return parseLimit(redis.call('HGET', limits, 'profile:' .. id)) or -1
  end
  return -1
end

-- The configured limit, or a lower one while Telnyx's reported limit is in force.
local function effectiveLimit(scope, now)
  local limit = configuredLimit(scope)
  local lowered = redis.call('HGET', slotKey('lowered'), scope)
  if lowered then
    local value, untilMs = string.match(lowered, '^(%d+):(%d+)$')
    if tonumber(untilMs) > now then
      value = tonumber(value)
      if limit < 0 or value < limit then limit = value end
    else
      redis.call('HDEL', slotKey('lowered'), scope)
    end
  end
  return limit
end

-- Wakes the faxes first in line for the free slots of a scope (each at most once per S.wakeRetryMs),
-- appending their job ids to `out` for the caller to promote.
local function wakeScope(scope, now, out)
  local parked = slotKey('parked:' .. scope)
  local limit = effectiveLimit(scope, now)
  local free
  if limit < 0 then
    free = redis.call('ZCARD', parked)
  else
    free = limit - redis.call('ZCARD', slotKey('held:' .. scope))
  end
  if free <= 0 then return end
  if free > 500 then free = 500 end
  local woken = slotKey('woken')
  for _, faxId in ipairs(redis.call('ZRANGE', parked, 0, free - 1)) do
    local wokenAt = tonumber(redis.call('ZSCORE', woken, faxId))
    if not wokenAt or now - wokenAt >= S.wakeRetryMs then
      redis.call('ZADD', woken, now, faxId)
      local jobId = redis.call('HGET', faxKey(faxId), 'job_id')
      if jobId then out[#out + 1] = jobId end
    end
  end
end

-- Takes a fax out of the line it waits in; returns the scope it waited for, if any.
local function unpark(faxId)
  local record = faxKey(faxId)
  local on = redis.call('HGET', record, 'parked_on')
  redis.call('ZREM', slotKey('woken'), faxId)
  if not on then return nil end
  redis.call('HDEL', record, 'parked_on')
  local parked = slotKey('parked:' .. on)
  redis.call('ZREM', parked, faxId)
  if redis.call('EXISTS', parked) == 0 then redis.call('SREM', slotKey('waiting'), on) end
  return on
end

-- Gives back every slot a fax holds and wakes the next in line; a second call frees nothing.
local function releaseSlots(faxId, now, out)
  local record = faxKey(faxId)
  redis.call('ZREM', slotKey('leases'), faxId)
  local held = redis.call('HGET', record, 'slots')
  if not held or held == '' then return 0 end
  redis.call('HDEL', record, 'slots')
  local scopes = {}
  for scope in string.gmatch(held, '[^\n]+') do
    local heldKey = slotKey('held:' .. scope)
    redis.call('ZREM', heldKey, faxId)
    if redis.call('EXISTS', heldKey) == 0 then redis.call('SREM', slotKey('active'), scope) end
    scopes[#scopes + 1] = scope
  end
  for _, scope in ipairs(scopes) do wakeScope(scope, now, out) end
  return #scopes
end

-- The scope of a kind ('connection', 'profile', 'account') the fax holds, nil if none; a profile
-- falls back to the connection (its profile is not known to us).
local function heldScope(faxId, kind)
  local held = redis.call('HGET', faxKey(faxId), 'slots') or ''
  local connection
  for scope in string.gmatch(held, '[^\n]+') do
    if scope == kind or string.sub(scope, 1, #kind + 1) == kind .. ':' then return scope end
    if string.sub(scope, 1, 11) == 'connection:' then connection = scope end
  end
  if kind == 'profile' then return connection end
  return nil
end

-- Telnyx refused a call over its real limit for `scope`: use one less than what was in flight (at
-- least 1) for S.lowerMs. Returns the new limit and the configured one, or nil if nothing changed.
local function lowerLimit(scope, now)
  local current = effectiveLimit(scope, now)
  local held = redis.call('ZCARD', slotKey('held:' .. scope))
  local base = held
  if current >= 0 and current < held then base = current end
  local target = math.max(1, base - 1)
  if current >= 0 and current <= target then target = current end
  redis.call('HSET', slotKey('lowered'), scope, target .. ':' .. string.format('%d', now + S.lowerMs))
  if current >= 0 and target >= current then return nil end
  return target, configuredLimit(scope)
end

-- Wakes faxes for free slots in every scope that has a line (after a limit was raised, or as a sweep).
local function wakeAllWaiting(now, out)
  local waiting = slotKey('waiting')
  for _, scope in ipairs(redis.call('SMEMBERS', waiting)) do
    if redis.call('EXISTS', slotKey('parked:' .. scope)) == 1 then
      wakeScope(scope, now, out)
    else
      redis.call('SREM', waiting, scope)
    end
  end
end
