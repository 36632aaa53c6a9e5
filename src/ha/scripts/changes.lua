#!lua flags=no-writes
--[[
  The changes after a given index, from the capped log, and whether they are all of them.
  Read-only: it takes no leadership arguments.

  KEYS  1 index_key: the cluster's change index  2 log_key: its change log
  ARGV  1 since: the index to read after  2 limit: the most entries to answer

  Flags: no-writes (it only reads: Redis runs it on a full Redis, or a replica)

  Returns {index (0 when Redis has none), complete (1 or 0), change payloads...}
  complete is 0 when the log no longer holds every change after `since` (trimmed, or
  Redis lost its data): the caller must read the whole state instead. An odd `since` was
  answered while the cluster had no data (lib/leadership.lua, unborn_index): the changes
  after it are complete from the cluster's first (whose index before is 0), and none at all
  while it still has none.
  Codes: none
]]

local index_key, log_key = KEYS[1], KEYS[2]
local since, limit = ARGV[1], ARGV[2]

-- A log entry is {id, {'p', the index before it, 'd', its payload}}.
local PREV, PAYLOAD = 2, 4

local unborn_since = tonumber(since) % 2 == 1
local idx = redis.call('GET', index_key)
if not idx then
  if unborn_since then return {tonumber(since), 1} end
  return {0, 0}
end
local entries = redis.call('XRANGE', log_key, '(' .. since .. '-0', '+', 'COUNT', limit)
local complete = 0
if #entries == 0 then
  if tonumber(idx) == tonumber(since) then complete = 1 end
elseif tonumber(entries[1][2][PREV]) == tonumber(since) then
  complete = 1
elseif unborn_since and tonumber(entries[1][2][PREV]) == 0 then
  complete = 1
end
local out = {tonumber(idx), complete}
for _, e in ipairs(entries) do out[#out + 1] = e[2][PAYLOAD] end
return out
