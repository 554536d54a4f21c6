--[[
  Every scope worth showing (`fax limits show`): the account, connections and profiles with a limit
  set, scopes whose limit Telnyx had lowered, and every scope with faxes holding or waiting for a slot.

  KEYS[1] limits hash
  ARGV[1] slot settings (JSON)

  Returns { { scope, configured (-1 = none), effective, lowered until (0 = not lowered), in flight,
  waiting }, ... } and then { connection id, profile, ... } assignments.
]]
S = cjson.decode(ARGV[1])
local now = nowMs()
local seen, scopes = {}, {}
local function add(scope)
  if not seen[scope] then
    seen[scope] = true
    scopes[#scopes + 1] = scope
  end
end
add('account')
local assignments = {}
local limits = redis.call('HGETALL', KEYS[1])
for i = 1, #limits, 2 do
  local field = limits[i]
  if string.sub(field, 1, 11) == 'profile-of:' then
    assignments[#assignments + 1] = string.sub(field, 12)
    assignments[#assignments + 1] = limits[i + 1]
  elseif string.find(field, ':') and string.sub(field, 1, 8) ~= 'default:' then
    add(field)
  end
end
for _, scope in ipairs(redis.call('HKEYS', slotKey('lowered'))) do add(scope) end
for _, scope in ipairs(redis.call('SMEMBERS', slotKey('active'))) do add(scope) end
for _, scope in ipairs(redis.call('SMEMBERS', slotKey('waiting'))) do add(scope) end
table.sort(scopes)
local rows = {}
for _, scope in ipairs(scopes) do
  local lowered = redis.call('HGET', slotKey('lowered'), scope)
  local loweredUntil = 0
  if lowered then loweredUntil = tonumber(string.match(lowered, ':(%d+)$')) or 0 end
  local effective = effectiveLimit(scope, now)
  if loweredUntil <= now then loweredUntil = 0 end
  rows[#rows + 1] = {
    scope, configuredLimit(scope), effective, loweredUntil,
    redis.call('ZCARD', slotKey('held:' .. scope)), redis.call('ZCARD', slotKey('parked:' .. scope)),
  }
end
return { rows, assignments }
