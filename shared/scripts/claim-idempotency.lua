--[[
  Claims an Idempotency-Key for a new fax, or answers with the fax that already has it; or takes over
  a claim whose fax was never stored (its request died), only if nobody else has meanwhile.

  KEYS[1] the key's claim (hash)
  ARGV[1] fax id to claim it for
  ARGV[2] fingerprint of the request
  ARGV[3] seconds to remember the key
  ARGV[4] now (ms)
  ARGV[5] '' to claim; to take over: the claimed_at the caller saw (compare and set)

  Returns { 1, fax id, fingerprint, claimed at }  claimed (or taken over) now
          { 0, fax id, fingerprint, claimed at }  claimed before (by someone else)
]]
local existing = redis.call('HMGET', KEYS[1], 'fax_id', 'fingerprint', 'claimed_at')
if ARGV[5] ~= '' then
  if existing[3] ~= ARGV[5] then return { 0, existing[1] or '', existing[2] or '', existing[3] or '0' } end
  redis.call('HSET', KEYS[1], 'claimed_at', ARGV[4])
  return { 1, existing[1], existing[2], ARGV[4] }
end
if existing[1] then return { 0, existing[1], existing[2] or '', existing[3] or '0' } end
redis.call('HSET', KEYS[1], 'fax_id', ARGV[1], 'fingerprint', ARGV[2], 'claimed_at', ARGV[4])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return { 1, ARGV[1], ARGV[2], ARGV[4] }
