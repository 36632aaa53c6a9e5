#!lua
--[[
  putJobResourceRequirements: stores the resource requirements of a job that has a plan.

  KEYS  1..3 as every store write (lib/store.lua), fenced by the dispatcher
        4 plan_key: the plan  5 requirements_key: its resource requirements
  ARGV  1..4 as every store write (lib/store.lua)
        5 requirements (JSON)

  Flags: none (a full Redis refuses it before it runs: nothing half-written)

  Returns {replayed, code}
  Codes:
    DONE (0)
    FENCE_STALE (-1)
    IDEMPOTENCY_KEY_REUSED (-2)
    EXECUTION_PLAN_NOT_FOUND (-6) the job has no plan
    QUOTA_EXCEEDED (-10)         a quota of the cluster is reached (lib/quota.lua)
]]
-- @include "lib/store.lua"

local plan_key, requirements_key = KEYS[4], KEYS[5]
local requirements = ARGV[5]

return fenced_write(function()
  if redis.call('EXISTS', plan_key) == 0 then return {EXECUTION_PLAN_NOT_FOUND} end
  redis.call('SET', requirements_key, requirements)
  return {DONE}
end)
