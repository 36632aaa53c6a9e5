#!lua flags=allow-oom
--[[
  Gives the leadership up now, only if this contender and session hold it: every component
  published under it becomes leaderless (revoked), each with its own change, in this one
  script.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 ls_lease  4 ls  5 published
        (lib/cluster_leadership.lua)  6 components_key: the cluster's components
        7.. lease and leader hash of each published component, as read
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 contender_id  5 session_id  6 owner: the name of the caller's access token, or ''
        7 force: '1' for an admin's resignation, whoever's token campaigned, else '0'
        8.. the published components, as read

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  Returns as lib/cluster_leadership.lua's reply; after HELD, the holder's published
  components (component, address, flat)
  Codes:
    DONE (0)                     released
    FREE (2)                     already free (a leadership that ran out is ended)
    HELD (1)                     held by another contender or session
    NOT_OWNER (11)               held by this session, campaigned for with another token
    CHANGED (-9)                 the published components are not the ones listed: retry
]]
-- @include "lib/cluster_leadership.lua"

local components_key = KEYS[6]
local contender_id, session_id, owner, force = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local list = listed_from(7)

local holder = redis.call('GET', ls_lease_key)
local ls = read_leadership()
local refused = refusal(holder, ls, list, contender_id, session_id, owner, force == '1')
if refused then return refused end
local how = 'resigned'
if force == '1' then how = 'revoked' end
return reply(DONE, false, 0, 0, end_leadership(list, ls, 'revoked', components_key, how))
