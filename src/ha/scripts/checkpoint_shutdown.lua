#!lua flags=allow-oom
--[[
  CompletedCheckpointStore.shutdown: discards every checkpoint of a job when its status is
  globally terminal, else keeps them.

  KEYS  1..3 as every store write (lib/store.lua), fenced by the job manager
        4 checkpoints_key: the job's checkpoints (sorted set)
  ARGV  1..4 as every store write (lib/store.lua)
        5 discard: '1' to discard

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  Returns {replayed, code, ids discarded...}
  Codes:
    DONE (0)
    FENCE_STALE (-1)
    IDEMPOTENCY_KEY_REUSED (-2)
    QUOTA_EXCEEDED (-10)         a quota of the cluster is reached (lib/quota.lua)
]]
-- @include "lib/store.lua"

local checkpoints_key = KEYS[4]
local discard = ARGV[5]

return fenced_write(function()
  local answer = {DONE}
  if discard == '1' then
    local all = redis.call('ZRANGE', checkpoints_key, 0, -1, 'WITHSCORES')
    for i = 2, #all, 2 do answer[#answer + 1] = all[i] end
    redis.call('DEL', checkpoints_key)
  end
  return answer
end)
