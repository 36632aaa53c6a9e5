--[[
  putJobResourceRequirements: stores the resource requirements of a job that has a plan.

  KEYS[1..3], ARGV[1..3] as every store write (see lib/store.lua), fenced by the dispatcher
  KEYS[4] the plan  KEYS[5] its resource requirements
  ARGV[4] the requirements (JSON)

  Returns {replayed, code}: 0 stored  -1 fence  -2 idempotency key reused  -6 no plan
]]
-- @include "lib/store.lua"

return fenced_write(function()
  if redis.call('EXISTS', KEYS[4]) == 0 then return {-6} end
  redis.call('SET', KEYS[5], ARGV[4])
  return {0}
end)
