#!lua
--[[
  putExecutionPlan: stores a job's execution plan, replacing any earlier one.

  KEYS  1..3 as every store write (lib/store.lua), fenced by the dispatcher
        4 plan_key: the plan  5 plans_key: the set of job ids with a plan
  ARGV  1..4 as every store write (lib/store.lua)
        5 job_id  6 plan: the plan's bytes

  Flags: none (a full Redis refuses it before it runs: nothing half-written)

  Returns {replayed, code}
  Codes:
    DONE (0)
    FENCE_STALE (-1)
    IDEMPOTENCY_KEY_REUSED (-2)
    QUOTA_EXCEEDED (-10)         a quota of the cluster is reached (lib/quota.lua)
]]
-- @include "lib/store.lua"

local plan_key, plans_key = KEYS[4], KEYS[5]
local job_id, plan = ARGV[5], ARGV[6]

return fenced_write(function()
  local refused = quota_member(plans_key, job_id, 'executionPlans', limits.executionPlans) if refused then return refused end
  redis.call('SET', plan_key, plan)
  redis.call('SADD', plans_key, job_id)
  return {DONE}
end)
