#!lua
--[[
  putExecutionPlan, last step: makes a staged plan (a list: header, chunks) the job's plan,
  replacing any earlier one, whole: a reader never sees half a plan (it reads the header
  with each chunk, so it never mixes two plans either).

  KEYS  1..3 as every store write (lib/store.lua), fenced by the dispatcher
        4 plan_key: the plan (list: header, chunks)
        5 plans_key: the sorted set of job ids with a plan (scores 0)
        6 staged_key: the staged header and chunks
  ARGV  1..4 as every store write (lib/store.lua)
        5 job_id  6 length: how many elements (header and chunks) the caller staged

  Flags: none (a full Redis refuses it before it runs: nothing half-written)

  Returns {replayed, code}
  Codes:
    DONE (0)
    FENCE_STALE (-1)
    IDEMPOTENCY_KEY_REUSED (-2)
    STAGED_UPLOAD_GONE (-7)      the staged plan is gone or short (expired, or Redis lost it)
    QUOTA_EXCEEDED (-10)         a quota of the cluster is reached (lib/quota.lua)
]]
-- @include "lib/store.lua"

local plan_key, plans_key, staged_key = KEYS[4], KEYS[5], KEYS[6]
local job_id, length = ARGV[5], tonumber(ARGV[6])

return fenced_write(function()
  local refused = quota_member(plans_key, job_id, 'executionPlans', limits.executionPlans) if refused then return refused end
  if redis.call('LLEN', staged_key) ~= length then return {STAGED_UPLOAD_GONE} end
  -- An earlier plan may be a string (stored before plans were chunked) or a list.
  redis.call('UNLINK', plan_key)
  redis.call('RENAME', staged_key, plan_key)
  redis.call('PERSIST', plan_key)
  redis.call('ZADD', plans_key, 0, job_id)
  return {DONE}
end)
