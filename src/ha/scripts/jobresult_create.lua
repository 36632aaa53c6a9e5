#!lua
--[[
  createDirtyResult: stores a job's result as dirty, unless the job has any entry.

  KEYS  1..3 as every store write (lib/store.lua), fenced by the dispatcher
        4 entry_key: the entry (hash)  5 all_key: the sorted set of all job ids
        6 dirty_key: the sorted set of dirty ones (both scored 0, read by ZRANGE BYLEX)
  ARGV  1..4 as every store write (lib/store.lua)
        5 job_id  6.. field, value, ... of the entry

  Flags: none (a full Redis refuses it before it runs: nothing half-written)

  Returns {replayed, code, field, value, ...}
  Codes:
    DONE (0)                     created; the entry follows
    FENCE_STALE (-1)
    IDEMPOTENCY_KEY_REUSED (-2)
    JOB_RESULT_EXISTS (-3)       the job has an entry
    QUOTA_EXCEEDED (-10)         a quota of the cluster is reached (lib/quota.lua)
    ANSWER_GONE (-11)            a replay: the entry it answered is gone or another one
]]
-- @include "lib/store.lua"
-- @include "lib/job_result.lua"

local entry_key, all_key, dirty_key = KEYS[4], KEYS[5], KEYS[6]
local job_id = ARGV[5]

return fenced_write(function()
  if redis.call('EXISTS', entry_key) == 1 then return {JOB_RESULT_EXISTS} end
  local refused = quota_member(all_key, job_id, 'jobResults', limits.jobResults) if refused then return refused end
  redis.call('HSET', entry_key, 'state', 'dirty', 'createdAt', now_ms(), unpack(ARGV, 6))
  redis.call('ZADD', all_key, 0, job_id)
  redis.call('ZADD', dirty_key, 0, job_id)
  return {DONE, unpack(redis.call('HGETALL', entry_key))}
end, function(digest) return job_result_replay(entry_key, digest, true) end)
