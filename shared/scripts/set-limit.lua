--[[
  Changes a limit at run time (`fax limits set|unset|assign`) and wakes the faxes it lets through.
  Setting a limit also ends a lowering Telnyx caused for that scope: the operator's word wins.
  Moving a connection to another outbound profile moves its calls in flight with it (they count
  against the new profile and no longer against the old), and wakes its faxes waiting in the old
  profile's line, which they no longer need.

  KEYS[1] limits hash
  ARGV[1] slot settings (JSON)
  ARGV[2] field: 'account', 'destination', 'connection:<id>', 'profile:<name>' or 'profile-of:<connection id>'
  ARGV[3] value ('' = remove: back to the environment's default)

  Returns the job ids to promote.
]]
S = cjson.decode(ARGV[1])
local field, value = ARGV[2], ARGV[3]
local now = nowMs()
local wake = {}

if string.sub(field, 1, 11) == 'profile-of:' then
  local connection = string.sub(field, 12)
  local old = redis.call('HGET', KEYS[1], field)
  local oldScope = old and ('profile:' .. old) or nil
  local newScope = value ~= '' and ('profile:' .. value) or nil
  if oldScope ~= newScope then
    for _, faxId in ipairs(redis.call('ZRANGE', slotKey('held:connection:' .. connection), 0, -1)) do
      local record = faxKey(faxId)
      local scopes = {}
      for scope in string.gmatch(redis.call('HGET', record, 'slots') or '', '[^\n]+') do
        if scope ~= oldScope then scopes[#scopes + 1] = scope end
      end
      if oldScope then
        local oldHeld = slotKey('held:' .. oldScope)
        redis.call('ZREM', oldHeld, faxId)
        if redis.call('EXISTS', oldHeld) == 0 then redis.call('SREM', slotKey('active'), oldScope) end
      end
      if newScope then
        scopes[#scopes + 1] = newScope
        redis.call('ZADD', slotKey('held:' .. newScope), now, faxId)
        redis.call('SADD', slotKey('active'), newScope)
      end
      redis.call('HSET', record, 'slots', table.concat(scopes, '\n'))
    end
    if oldScope then
      for _, faxId in ipairs(redis.call('ZRANGE', slotKey('parked:' .. oldScope), 0, -1)) do
        local request = redis.call('HGET', faxKey(faxId), 'request')
        local jobId = redis.call('HGET', faxKey(faxId), 'job_id')
        if request and jobId and tostring(cjson.decode(request).connection_id) == connection then
          redis.call('ZADD', slotKey('woken'), now, faxId)
          wake[#wake + 1] = jobId
        end
      end
    end
  end
end

if value == '' then
  redis.call('HDEL', KEYS[1], field)
else
  redis.call('HSET', KEYS[1], field, value)
end
if string.sub(field, 1, 11) ~= 'profile-of:' then redis.call('HDEL', slotKey('lowered'), field) end
wakeAllWaiting(now, wake)
return wake
