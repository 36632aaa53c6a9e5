#!lua flags=allow-oom
--[[
  Called by a server when a published component's lease should have run out (expire.lua
  answers PUBLISHED): Redis alone decides. Ends the leadership once, however many servers
  ask: every component published under it becomes leaderless (expired), each with its own
  change, in this one script.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 ls_lease  4 ls  5 published
        (lib/cluster_leadership.lua)  6 components_key: the cluster's components
        7.. lease and leader hash of each published component, as read
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4.. the published components, as read

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  Returns as lib/cluster_leadership.lua's reply
  Codes:
    DONE (0)                     ended now: the expiries follow
    HELD (1)                     still held (renewed meanwhile)
    FREE (2)                     nothing held, and nothing to record
    CHANGED (-9)                 the published components are not the ones listed: retry
]]
-- @include "lib/cluster_leadership.lua"

local components_key = KEYS[6]
local list = listed_from(7)

local holder = redis.call('GET', ls_lease_key)
local ls = read_leadership()
if holder then return not_held_reply(holder, ls, {}) end
if ls[LIVE] ~= LIVE_YES then return reply(FREE, false, 0, 0, {}) end
local changes = settle_ended(holder, ls, list, components_key)
if not changes then return {CHANGED} end
return reply(DONE, false, 0, 0, changes)
