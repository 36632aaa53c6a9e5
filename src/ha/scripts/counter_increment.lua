#!lua
--[[
  CheckpointIDCounter.getAndIncrement: answers the counter and advances it; it starts at 1.

  KEYS  1..3 as every store write (lib/store.lua), fenced by the job manager
        4 counter_key: the counter
  ARGV  1..4 as every store write (lib/store.lua)
        5 floor: the lowest value the counter may answer: one above the highest value the
          calling server has answered, so that a Redis gone back in time (a failover to a
          replica that lagged, a restored backup) never hands an id out twice

  Flags: none (a full Redis refuses it before it runs: nothing half-written)

  Returns {replayed, code, value before}
  Codes:
    DONE (0)
    FENCE_STALE (-1)
    IDEMPOTENCY_KEY_REUSED (-2)
    QUOTA_EXCEEDED (-10)         a quota of the cluster is reached (lib/quota.lua)
]]
-- @include "lib/store.lua"

local counter_key = KEYS[4]
local floor = tonumber(ARGV[5])

return fenced_write(function()
  local value = tonumber(redis.call('GET', counter_key) or '1')
  if value < floor then value = floor end
  redis.call('SET', counter_key, string.format('%.0f', value + 1))
  return {DONE, string.format('%.0f', value)}
end)
