--[[
  CheckpointIDCounter.getAndIncrement: answers the counter and advances it; it starts at 1.

  KEYS  1..3 as every store write (lib/store.lua), fenced by the job manager
        4 counter_key: the counter
  ARGV  1..3 as every store write (lib/store.lua)

  Returns {replayed, code, value before}
  Codes:
    DONE (0)
    FENCE_STALE (-1)
    IDEMPOTENCY_KEY_REUSED (-2)
]]
-- @include "lib/store.lua"

local counter_key = KEYS[4]

return fenced_write(function()
  if redis.call('EXISTS', counter_key) == 0 then redis.call('SET', counter_key, 1) end
  return {DONE, string.format('%.0f', redis.call('INCR', counter_key) - 1)}
end)
