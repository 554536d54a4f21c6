--[[
  Claims an Idempotency-Key for a new fax, or answers with the fax that already has it.

  KEYS[1] the key's claim (hash)
  ARGV[1] fax id to claim it for
  ARGV[2] fingerprint of the request
  ARGV[3] seconds to remember the key
  ARGV[4] now (ms)

  Returns { 1, fax id, fingerprint, claimed at }  claimed now, for ARGV[1]
          { 0, fax id, fingerprint, claimed at }  claimed before
]]
local existing = redis.call('HMGET', KEYS[1], 'fax_id', 'fingerprint', 'claimed_at')
if existing[1] then return { 0, existing[1], existing[2] or '', existing[3] or '0' } end
redis.call('HSET', KEYS[1], 'fax_id', ARGV[1], 'fingerprint', ARGV[2], 'claimed_at', ARGV[4])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return { 1, ARGV[1], ARGV[2], ARGV[4] }
