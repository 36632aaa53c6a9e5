--[[
  CheckpointIDCounter.getAndIncrement: answers the counter and advances it; it starts at 1.

  KEYS[1..3], ARGV[1..3] as every store write (see lib/store.lua), fenced by the job manager
  KEYS[4] the counter

  Returns {replayed, code, value before}: 0 done  -1 fence  -2 idempotency key reused
]]
-- @include "lib/store.lua"

return fenced_write(function()
  if redis.call('EXISTS', KEYS[4]) == 0 then redis.call('SET', KEYS[4], 1) end
  return {0, string.format('%.0f', redis.call('INCR', KEYS[4]) - 1)}
end)
