--[[
  CompletedCheckpointStore.shutdown: discards every checkpoint of a job when its status is
  globally terminal, else keeps them.

  KEYS[1..3], ARGV[1..3] as every store write (see lib/store.lua), fenced by the job manager
  KEYS[4] the job's checkpoints (sorted set)
  ARGV[4] '1' to discard

  Returns {replayed, code, ids discarded...}: 0 done  -1 fence  -2 idempotency key reused
]]
-- @include "lib/store.lua"

return fenced_write(function()
  local answer = {0}
  if ARGV[4] == '1' then
    local all = redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')
    for i = 2, #all, 2 do answer[#answer + 1] = all[i] end
    redis.call('DEL', KEYS[4])
  end
  return answer
end)
