--[[
  Takes a fax out of the line it waits in (its job ended without sending it) and wakes whoever the
  freed place lets through. Does nothing to slots the fax holds.

  KEYS[1] fax record
  ARGV[1] slot settings (JSON)
  ARGV[2] fax id

  Returns the job ids to promote.
]]
S = cjson.decode(ARGV[1])
local wake = {}
local waitedFor = unpark(ARGV[2])
if waitedFor then wakeScope(waitedFor, nowMs(), wake) end
return wake
