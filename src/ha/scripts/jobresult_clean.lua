--[[
  markResultAsClean: marks a job's result clean; a clean one stays as it is.

  KEYS[1..3], ARGV[1..3] as every store write (see lib/store.lua), fenced by the dispatcher
  KEYS[4] the entry (hash)  KEYS[5] the set of dirty job ids
  ARGV[4] job id

  Returns {replayed, code, field, value, ...}: 0 clean (the entry follows)
    -1 fence  -2 idempotency key reused  -4 no entry
]]
-- @include "lib/store.lua"

return fenced_write(function()
  local state = redis.call('HGET', KEYS[4], 'state')
  if not state then return {-4} end
  if state ~= 'clean' then
    redis.call('HSET', KEYS[4], 'state', 'clean', 'cleanedAt', now_ms())
    redis.call('SREM', KEYS[5], ARGV[4])
  end
  return {0, unpack(redis.call('HGETALL', KEYS[4]))}
end)
