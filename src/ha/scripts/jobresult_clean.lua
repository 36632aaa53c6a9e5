#!lua
--[[
  markResultAsClean: marks a job's result clean; a clean one stays as it is.

  KEYS  1..3 as every store write (lib/store.lua), fenced by the dispatcher
        4 entry_key: the entry (hash)  5 dirty_key: the sorted set of dirty job ids
  ARGV  1..4 as every store write (lib/store.lua)
        5 job_id

  Flags: none (a full Redis refuses it before it runs: nothing half-written)

  Returns {replayed, code, field, value, ...}
  Codes:
    DONE (0)                     clean; the entry follows
    FENCE_STALE (-1)
    IDEMPOTENCY_KEY_REUSED (-2)
    JOB_RESULT_NOT_FOUND (-4)    no entry
    QUOTA_EXCEEDED (-10)         a quota of the cluster is reached (lib/quota.lua)
    ANSWER_GONE (-11)            a replay: the entry it answered is gone or another one
]]
-- @include "lib/store.lua"
-- @include "lib/job_result.lua"

local entry_key, dirty_key = KEYS[4], KEYS[5]
local job_id = ARGV[5]

return fenced_write(function()
  local state = redis.call('HGET', entry_key, 'state')
  if not state then return {JOB_RESULT_NOT_FOUND} end
  if state ~= 'clean' then
    redis.call('HSET', entry_key, 'state', 'clean', 'cleanedAt', now_ms())
    redis.call('ZREM', dirty_key, job_id)
  end
  return {DONE, unpack(redis.call('HGETALL', entry_key))}
end, function(digest) return job_result_replay(entry_key, digest, false) end)
