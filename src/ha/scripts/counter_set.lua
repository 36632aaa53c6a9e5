#!lua
--[[
  CheckpointIDCounter.setCount, never backwards, so that no id is handed out twice.

  KEYS  1..3 as every store write (lib/store.lua), fenced by the job manager
        4 counter_key: the counter
  ARGV  1..4 as every store write (lib/store.lua)
        5 value: the new value

  Flags: none (a full Redis refuses it before it runs: nothing half-written)

  Returns {replayed, code, value}
  Codes:
    DONE (0)                     set; the value follows
    FENCE_STALE (-1)
    IDEMPOTENCY_KEY_REUSED (-2)
    COUNTER_BELOW (-8)           below the current value, which follows
    QUOTA_EXCEEDED (-10)         a quota of the cluster is reached (lib/quota.lua)
]]
-- @include "lib/store.lua"

local counter_key = KEYS[4]
local value = ARGV[5]

return fenced_write(function()
  local current = redis.call('GET', counter_key) or '1'
  if tonumber(value) < tonumber(current) then return {COUNTER_BELOW, current} end
  redis.call('SET', counter_key, value)
  return {DONE, value}
end)
