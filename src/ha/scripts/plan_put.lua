--[[
  putExecutionPlan: stores a job's execution plan, replacing any earlier one.

  KEYS[1..3], ARGV[1..3] as every store write (see lib/store.lua), fenced by the dispatcher
  KEYS[4] the plan  KEYS[5] the set of job ids with a plan
  ARGV[4] job id  ARGV[5] the plan's bytes

  Returns {replayed, code}: 0 stored  -1 fence  -2 idempotency key reused
]]
-- @include "lib/store.lua"

return fenced_write(function()
  redis.call('SET', KEYS[4], ARGV[5])
  redis.call('SADD', KEYS[5], ARGV[4])
  return {0}
end)
