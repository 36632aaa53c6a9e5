--[[
  RedisBlobStore.put, last step: makes a staged upload the blob under its key, replacing any
  earlier one, whose chunks go.

  KEYS[1..3], ARGV[1..3] as every store write (see lib/store.lua), fenced by the dispatcher
  KEYS[4] the job's blob metadata (hash: blob key -> JSON)  KEYS[5] the staged chunks
  KEYS[6] the chunks of the blob it replaces, as the caller read them
  ARGV[4] blob key  ARGV[5] upload id  ARGV[6] size  ARGV[7] SHA-256 (hex)
  ARGV[8] the upload id of the blob it replaces, as the caller read it ('' for none)

  Returns {replayed, code}: 0 visible  -1 fence  -2 idempotency key reused
    -7 the staged chunks are gone (expired, or Redis lost them)
    -9 the blob changed since the caller read it: read again and retry
]]
-- @include "lib/store.lua"

return fenced_write(function()
  local meta = redis.call('HGET', KEYS[4], ARGV[4])
  local old = meta and cjson.decode(meta).u or ''
  if old ~= ARGV[8] then return {-9} end
  if ARGV[6] ~= '0' then
    if redis.call('EXISTS', KEYS[5]) == 0 then return {-7} end
    redis.call('PERSIST', KEYS[5])
  end
  redis.call('HSET', KEYS[4], ARGV[4],
    '{"u":"' .. ARGV[5] .. '","n":' .. ARGV[6] .. ',"h":"' .. ARGV[7] .. '","t":' .. now_ms() .. '}')
  if old ~= '' then redis.call('UNLINK', KEYS[6]) end
  return {0}
end)
