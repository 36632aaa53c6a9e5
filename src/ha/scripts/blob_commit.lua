#!lua
--[[
  RedisBlobStore.put, last step: makes a staged upload the blob under its key, replacing any
  earlier one, whose chunks go.

  KEYS  1..3 as every store write (lib/store.lua), fenced by the dispatcher
        4 meta_key: the job's blob metadata (hash: blob key -> JSON)
        5 staged_key: the staged chunks
        6 old_chunks_key: the chunks of the blob it replaces, as the caller read them
  ARGV  1..4 as every store write (lib/store.lua)
        5 blob_key  6 upload_id  7 size  8 sha256 (hex)
        9 old_upload: the upload id of the blob it replaces, as the caller read it ('' for none)
        10 chunk_count: how many chunks the caller staged

  Flags: none (a full Redis refuses it before it runs: nothing half-written)

  Returns {replayed, code}
  Codes:
    DONE (0)                     the blob is visible
    FENCE_STALE (-1)
    IDEMPOTENCY_KEY_REUSED (-2)
    STAGED_UPLOAD_GONE (-7)      staged chunks are gone or missing (expired, or Redis lost
                                 them): a blob commits only whole
    CHANGED (-9)                 the blob changed since the caller read it: read again, retry
    QUOTA_EXCEEDED (-10)         a quota of the cluster is reached (lib/quota.lua)
]]
-- @include "lib/store.lua"

local meta_key, staged_key, old_chunks_key = KEYS[4], KEYS[5], KEYS[6]
local blob_key, upload_id, size, sha256, old_upload = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local chunk_count = tonumber(ARGV[10])

return fenced_write(function()
  local meta = redis.call('HGET', meta_key, blob_key)
  local old = meta and cjson.decode(meta).u or ''
  if old ~= old_upload then return {CHANGED} end
  if size ~= '0' and redis.call('LLEN', staged_key) ~= chunk_count then return {STAGED_UPLOAD_GONE} end
  local refused = quota_blob(usage_key, meta, size, limits) if refused then return refused end
  if size ~= '0' then redis.call('PERSIST', staged_key) end
  redis.call('HSET', meta_key, blob_key,
    '{"u":"' .. upload_id .. '","n":' .. size .. ',"h":"' .. sha256 .. '","t":' .. now_ms() .. '}')
  if old ~= '' then redis.call('UNLINK', old_chunks_key) end
  return {DONE}
end)
