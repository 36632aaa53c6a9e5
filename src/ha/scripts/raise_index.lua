#!lua flags=allow-oom
--[[
  Raises a cluster's change index above the caller's floor, without a change: a server
  whose resync found a state that the changes it could replay do not explain sends that
  state to its watchers as a snapshot under this new index, which every watcher and every
  long-poll sees as news (docs/design.md §4, §9).

  KEYS  1 index  2 log  (lib/leadership.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  Returns {DONE, the new index}
  Codes:
    DONE (0)
]]
-- @include "lib/leadership.lua"

local prev = redis.call('GET', index_key)
local idx = int(next_index(prev, index_floor))
store_index(idx, prev)
return {DONE, tonumber(idx)}
