--[[
  Extends the lease of a fax that still holds its slots (Telnyx says the call goes on, or its job is
  still submitting it).

  KEYS[1] fax record
  ARGV[1] slot settings (JSON)
  ARGV[2] fax id

  Returns 1 if renewed, 0 if the fax holds no slots.
]]
S = cjson.decode(ARGV[1])
local held = redis.call('HGET', KEYS[1], 'slots')
if not held or held == '' then
  redis.call('ZREM', slotKey('leases'), ARGV[2])
  return 0
end
redis.call('ZADD', slotKey('leases'), nowMs() + S.leaseMs, ARGV[2])
return 1
