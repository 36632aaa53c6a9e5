--[[
  createDirtyResult: stores a job's result as dirty, unless the job has any entry.

  KEYS[1..3], ARGV[1..3] as every store write (see lib/store.lua), fenced by the dispatcher
  KEYS[4] the entry (hash)  KEYS[5] the set of all job ids  KEYS[6] the set of dirty ones
  ARGV[4] job id  ARGV[5..] field, value, ... of the entry

  Returns {replayed, code, field, value, ...}: 0 created (the entry follows)
    -1 fence  -2 idempotency key reused  -3 an entry exists
]]
-- @include "lib/store.lua"

return fenced_write(function()
  if redis.call('EXISTS', KEYS[4]) == 1 then return {-3} end
  redis.call('HSET', KEYS[4], 'state', 'dirty', 'createdAt', now_ms(), unpack(ARGV, 5))
  redis.call('SADD', KEYS[5], ARGV[4])
  redis.call('SADD', KEYS[6], ARGV[4])
  return {0, unpack(redis.call('HGETALL', KEYS[4]))}
end)
