--[[
  addCheckpointAndSubsumeOldestOne: adds a completed checkpoint and drops the oldest ones
  beyond the number to retain.

  KEYS[1..3], ARGV[1..3] as every store write (see lib/store.lua), fenced by the job manager
  KEYS[4] the job's checkpoints (sorted set, scored by checkpoint id, members JSON)
  ARGV[4] checkpoint id  ARGV[5] the checkpoint (JSON)  ARGV[6] how many to retain

  Returns {replayed, code, ...}: 0 added, followed by id, external pointer of each
  subsumed checkpoint, oldest first
    -1 fence  -2 idempotency key reused  -5 id not above the latest (the latest id follows)
]]
-- @include "lib/store.lua"

return fenced_write(function()
  local last = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
  if last[2] and tonumber(last[2]) >= tonumber(ARGV[4]) then return {-5, last[2]} end
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[5])
  local over = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[6])
  local answer = {0}
  if over > 0 then
    local gone = redis.call('ZRANGE', KEYS[4], 0, over - 1, 'WITHSCORES')
    for i = 1, #gone, 2 do
      answer[#answer + 1] = gone[i + 1]
      answer[#answer + 1] = cjson.decode(gone[i]).externalPointer
    end
    redis.call('ZREMRANGEBYRANK', KEYS[4], 0, over - 1)
  end
  return answer
end)
