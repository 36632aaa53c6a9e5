#!lua flags=allow-oom
--[[
  An admin's revocation of the leadership (a forced failover), or cleanupAllData's end of
  it: every component published under it becomes leaderless (revoked), each with its own
  change, in this one script.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 ls_lease  4 ls  5 published
        (lib/cluster_leadership.lua)  6 components_key: the cluster's components
        7.. lease and leader hash of each published component, as read
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 session_id: revoke only this session's leadership; '' for whoever holds it
        5 forget: '1' to delete the leadership hash too (cleanupAllData)
        6.. the published components, as read

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  Returns as lib/cluster_leadership.lua's reply; after HELD, the holder's published
  components (component, address, flat)
  Codes:
    DONE (0)                     revoked
    FREE (2)                     nothing held (a leadership that ran out is ended)
    HELD (1)                     held by another session than the one named
    CHANGED (-9)                 the published components are not the ones listed: retry
]]
-- @include "lib/cluster_leadership.lua"

local session_id, forget = ARGV[4], ARGV[5]
local components_key = KEYS[6]
local list = listed_from(7)

local holder = redis.call('GET', ls_lease_key)
local ls = read_leadership()
if holder and session_id ~= '' and not holds(holder, ls, session_id) then return not_held_reply(holder, ls, {}) end
local code, changes = FREE, {}
if ls[LIVE] == LIVE_YES then
  if not names_exactly(list, published_key, 'HLEN', 'HEXISTS') then return {CHANGED} end
  if holder then
    code = DONE
    changes = end_leadership(list, ls, 'revoked', components_key)
  else
    changes = end_leadership(list, ls, 'expired', components_key)
  end
end
redis.call('DEL', ls_lease_key)
if forget == '1' then redis.call('DEL', ls_key, published_key) end
return reply(code, false, 0, 0, changes)
