--[[
  CheckpointIDCounter.shutdown: removes the counter when the job's status is globally
  terminal, else keeps it.

  KEYS[1..3], ARGV[1..3] as every store write (see lib/store.lua), fenced by the job manager
  KEYS[4] the counter
  ARGV[4] '1' to remove

  Returns {replayed, code, removed ('1' or '0')}: 0 done  -1 fence  -2 idempotency key reused
]]
-- @include "lib/store.lua"

return fenced_write(function()
  if ARGV[4] == '1' and redis.call('DEL', KEYS[4]) == 1 then return {0, '1'} end
  return {0, '0'}
end)
