--[[
  Changes a limit at run time (`fax limits set|unset|assign`) and wakes the faxes it lets through.
  Setting a limit also ends a lowering Telnyx caused for that scope: the operator's word wins.

  KEYS[1] limits hash
  ARGV[1] slot settings (JSON)
  ARGV[2] field: 'account', 'destination', 'connection:<id>', 'profile:<name>' or 'profile-of:<connection id>'
  ARGV[3] value ('' = remove: back to the environment's default)

  Returns the job ids to promote.
]]
S = cjson.decode(ARGV[1])
local field, value = ARGV[2], ARGV[3]
if value == '' then
  redis.call('HDEL', KEYS[1], field)
else
  redis.call('HSET', KEYS[1], field, value)
end
if string.sub(field, 1, 11) ~= 'profile-of:' then redis.call('HDEL', slotKey('lowered'), field) end
local wake = {}
wakeAllWaiting(nowMs(), wake)
return wake
