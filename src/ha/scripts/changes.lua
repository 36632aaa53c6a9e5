--[[
  The changes after a given index, from the capped log, and whether they are all of them.

  KEYS[1] index  KEYS[2] log
  ARGV[1] the index to read after  ARGV[2] the most entries to answer

  Returns {index (0 when Redis has none), complete (1 or 0), change payloads...}
  complete is 0 when the log no longer holds every change after ARGV[1] (trimmed, or
  Redis lost its data): the caller must read the whole state instead.
]]

local idx = redis.call('GET', KEYS[1])
if not idx then return {0, 0} end
local since = tonumber(ARGV[1])
local entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-0', '+', 'COUNT', ARGV[2])
local complete = 0
if #entries == 0 then
  if tonumber(idx) == since then complete = 1 end
elseif tonumber(entries[1][2][2]) == since then
  complete = 1
end
local out = {tonumber(idx), complete}
for _, e in ipairs(entries) do out[#out + 1] = e[2][4] end
return out
