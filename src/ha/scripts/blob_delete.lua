--[[
  RedisBlobStore.delete and deleteAll: removes blobs of a job and their chunks.

  KEYS[1..3], ARGV[1..3] as every store write (see lib/store.lua), fenced by the dispatcher
  KEYS[4] the job's blob metadata (hash)  KEYS[4 + i] the chunks of the i-th blob, as read
  ARGV[4] '1' when these are all the job's blobs (deleteAll)
  ARGV[3 + 2i], ARGV[4 + 2i] the i-th blob key and its upload id as read ('' for none)

  Returns {replayed, code, how many were deleted}: 0 done  -1 fence
    -2 idempotency key reused  -9 the blobs changed since the caller read them: retry
]]
-- @include "lib/store.lua"

return fenced_write(function()
  local n = (#ARGV - 4) / 2
  if ARGV[4] == '1' and redis.call('HLEN', KEYS[4]) ~= n then return {-9} end
  for i = 1, n do
    local meta = redis.call('HGET', KEYS[4], ARGV[3 + 2 * i])
    if (meta and cjson.decode(meta).u or '') ~= ARGV[4 + 2 * i] then return {-9} end
  end
  local deleted = 0
  for i = 1, n do
    deleted = deleted + redis.call('HDEL', KEYS[4], ARGV[3 + 2 * i])
    redis.call('UNLINK', KEYS[4 + i])
  end
  return {0, tostring(deleted)}
end)
