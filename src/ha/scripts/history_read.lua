#!lua flags=no-writes
--[[
  Reads a page of a cluster's leadership history (lib/history.lua), newest first: the
  entries of one component (or of all), granted between two times, after a cursor. It
  looks at no more than `budget` entries, so that a filter matching few of many answers a
  short page with a cursor rather than running long (issue 16: bounded scripts).

  KEYS  1 history: the stream  2 history:entries (lib/history.lua)
  ARGV  1 before: the id to read below (exclusive), or '+' for the newest
        2 min: the oldest id to read ('-', or a time in ms)
        3 component: '' for all
        4 limit: the most entries to answer  5 budget: the most entries to look at

  Flags: no-writes (a read; it runs on a replica, and on a full Redis)

  Returns {code, cursor or false, then per entry: id, grant json, address confirmed or
  false, '<ended at ms> <how>' or false}; the cursor (an id, exclusive) is false when the
  history holds nothing older that matches
  Codes:
    DONE (0)
]]
-- @include "lib/codes.lua"

local history_key, entries_key = KEYS[1], KEYS[2]
local before, min, component = ARGV[1], ARGV[2], ARGV[3]
local limit, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local CHUNK = 100

local out = {DONE, false}
local found, looked = 0, 0
local cursor = before
while true do
  local batch = redis.call('XREVRANGE', history_key, cursor, min, 'COUNT', math.min(CHUNK, budget - looked))
  if #batch == 0 then return out end
  for _, e in ipairs(batch) do
    local id = e[1]
    looked = looked + 1
    cursor = '(' .. id
    if component == '' or e[2][2] == component then
      local v = redis.call('HMGET', entries_key, id, id .. ':a', id .. ':e')
      -- An entry trimmed between the two reads is skipped.
      if v[1] then
        out[#out + 1] = id
        out[#out + 1] = v[1]
        out[#out + 1] = v[2]
        out[#out + 1] = v[3]
        found = found + 1
      end
    end
    if found == limit or looked == budget then
      out[2] = id
      return out
    end
  end
end
