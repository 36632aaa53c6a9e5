--[[
  CheckpointIDCounter.setCount, never backwards, so that no id is handed out twice.

  KEYS[1..3], ARGV[1..3] as every store write (see lib/store.lua), fenced by the job manager
  KEYS[4] the counter
  ARGV[4] the new value

  Returns {replayed, code, value}: 0 set  -1 fence  -2 idempotency key reused
    -8 below the current value (which follows)
]]
-- @include "lib/store.lua"

return fenced_write(function()
  local current = redis.call('GET', KEYS[4]) or '1'
  if tonumber(ARGV[4]) < tonumber(current) then return {-8, current} end
  redis.call('SET', KEYS[4], ARGV[4])
  return {0, ARGV[4]}
end)
