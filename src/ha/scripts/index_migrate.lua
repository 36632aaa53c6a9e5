#!lua
--[[
  Moves job ids from an index kept the old way (a set, which can only be read whole or in
  unsorted scans) into the sorted set that replaces it (every score 0, read in pages by
  ZRANGE BYLEX), at most a batch per run, so that no run is proportional to the data. An id
  moves atomically: it is in one of the two at every moment. Readers skip an id whose entry
  is gone, so that one removed from the old set's entry meanwhile does no harm.

  KEYS  1 legacy_key: the old set  2 index_key: the sorted set
  ARGV  1 batch: how many ids to move at most

  Flags: none (a full Redis refuses it before it runs: nothing half-moved)

  Returns {DONE, how many ids the old set still holds}
  Codes:
    DONE (0)
]]
-- @include "lib/codes.lua"

local legacy_key, index_key = KEYS[1], KEYS[2]
local batch = tonumber(ARGV[1])

local ids = redis.call('SPOP', legacy_key, batch)
for _, id in ipairs(ids) do redis.call('ZADD', index_key, 0, id) end
return {DONE, redis.call('SCARD', legacy_key)}
