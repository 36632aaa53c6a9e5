#!lua flags=allow-oom
--[[
  CheckpointIDCounter.shutdown: removes the counter when the job's status is globally
  terminal, else keeps it.

  KEYS  1..3 as every store write (lib/store.lua), fenced by the job manager
        4 counter_key: the counter
  ARGV  1..4 as every store write (lib/store.lua)
        5 remove: '1' to remove

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  Returns {replayed, code, removed ('1' or '0')}
  Codes:
    DONE (0)
    FENCE_STALE (-1)
    IDEMPOTENCY_KEY_REUSED (-2)
    QUOTA_EXCEEDED (-10)         a quota of the cluster is reached (lib/quota.lua)
]]
-- @include "lib/store.lua"

local counter_key = KEYS[4]
local remove = ARGV[5]

return fenced_write(function()
  if remove == '1' and redis.call('DEL', counter_key) == 1 then return {DONE, '1'} end
  return {DONE, '0'}
end)
