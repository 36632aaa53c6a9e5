#!lua flags=allow-oom
--[[
  RedisBlobStore.delete and deleteAll: removes blobs of a job and their chunks.

  KEYS  1..3 as every store write (lib/store.lua), fenced by the dispatcher
        4 meta_key: the job's blob metadata (hash)
        4 + i the chunks of the i-th blob, as read
  ARGV  1..4 as every store write (lib/store.lua)
        5 all: '1' when these are all the job's blobs (deleteAll)
        4 + 2i, 5 + 2i the i-th blob key and its upload id as read ('' for none)

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  Returns {replayed, code, how many were deleted}
  Codes:
    DONE (0)
    FENCE_STALE (-1)
    IDEMPOTENCY_KEY_REUSED (-2)
    CHANGED (-9)                 the blobs changed since the caller read them: retry
    QUOTA_EXCEEDED (-10)         a quota of the cluster is reached (lib/quota.lua)
]]
-- @include "lib/store.lua"

local meta_key = KEYS[4]
local all = ARGV[5]

return fenced_write(function()
  local n = (#ARGV - 5) / 2
  if all == '1' and redis.call('HLEN', meta_key) ~= n then return {CHANGED} end
  local metas = {}
  for i = 1, n do
    local meta = redis.call('HGET', meta_key, ARGV[4 + 2 * i])
    if (meta and cjson.decode(meta).u or '') ~= ARGV[5 + 2 * i] then return {CHANGED} end
    if meta then metas[#metas + 1] = meta end
  end
  local deleted = 0
  for i = 1, n do
    deleted = deleted + redis.call('HDEL', meta_key, ARGV[4 + 2 * i])
    redis.call('UNLINK', KEYS[4 + i])
  end
  quota_release_blobs(usage_key, metas)
  return {DONE, tostring(deleted)}
end)
