#!lua
--[[
  addCheckpointAndSubsumeOldestOne: adds a completed checkpoint, drops the older ones the
  caller names (Flink subsumes savepoints while it keeps an older checkpoint), then the
  oldest ones beyond the number to retain.

  KEYS  1..3 as every store write (lib/store.lua), fenced by the job manager
        4 checkpoints_key: the job's checkpoints (sorted set, scored by id, members JSON)
  ARGV  1..4 as every store write (lib/store.lua)
        5 checkpoint_id  6 checkpoint (JSON)  7 retain: how many to retain
        8 subsume: ids of older checkpoints to drop, comma-separated ('' for none; at most
          as many as a job may retain)

  Flags: none (a full Redis refuses it before it runs: nothing half-written)

  Returns {replayed, code, values...}
  Codes:
    DONE (0)                     added; then id, external pointer of each subsumed
                                 checkpoint, oldest first
    FENCE_STALE (-1)
    IDEMPOTENCY_KEY_REUSED (-2)
    CHECKPOINT_ID_NOT_ABOVE (-5) the id is not above the latest, whose id follows
    QUOTA_EXCEEDED (-10)         a quota of the cluster is reached (lib/quota.lua)
]]
-- @include "lib/store.lua"

local checkpoints_key = KEYS[4]
local checkpoint_id, checkpoint, retain, subsume = ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8]

return fenced_write(function()
  local last = redis.call('ZRANGE', checkpoints_key, -1, -1, 'WITHSCORES')
  if last[2] and tonumber(last[2]) >= tonumber(checkpoint_id) then return {CHECKPOINT_ID_NOT_ABOVE, last[2]} end
  redis.call('ZADD', checkpoints_key, checkpoint_id, checkpoint)
  local gone = {}
  local function drop(members)
    for i = 1, #members, 2 do gone[#gone + 1] = {tonumber(members[i + 1]), cjson.decode(members[i]).externalPointer} end
  end
  for id in string.gmatch(subsume, '%d+') do
    if tonumber(id) < tonumber(checkpoint_id) then
      drop(redis.call('ZRANGEBYSCORE', checkpoints_key, id, id, 'WITHSCORES'))
      redis.call('ZREMRANGEBYSCORE', checkpoints_key, id, id)
    end
  end
  local over = redis.call('ZCARD', checkpoints_key) - retain
  if over > 0 then
    drop(redis.call('ZRANGE', checkpoints_key, 0, over - 1, 'WITHSCORES'))
    redis.call('ZREMRANGEBYRANK', checkpoints_key, 0, over - 1)
  end
  table.sort(gone, function(a, b) return a[1] < b[1] end)
  local answer = {DONE}
  for _, g in ipairs(gone) do
    answer[#answer + 1] = string.format('%d', g[1])
    answer[#answer + 1] = g[2]
  end
  return answer
end)
