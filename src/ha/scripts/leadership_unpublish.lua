#!lua
--[[
  Deletes a component's leader information under the leadership (Flink's
  deleteLeaderInformation), only for the leadership's live session: a published
  component becomes leaderless (revoked).

  KEYS  1 index  2 log  (lib/leadership.lua)  3 ls_lease  4 ls  5 published
        (lib/cluster_leadership.lua)  6 lease_key  7 leader_key: the component's
        8 components_key: the cluster's components (an unpublished component is forgotten)
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 component  5 session_id  6 owner: the name of the caller's access token, or ''

  Flags: none (a full Redis refuses it before it runs: nothing half-written)

  Returns as lib/cluster_leadership.lua's reply; after DONE, 1 when the component was
  published, else 0; after HELD, the holder's published components
  Codes:
    DONE (0)                     no longer published
    HELD (1)                     the leadership is held by another session
    FREE (2)                     no leadership is held
    NOT_OWNER (11)               held by this session, campaigned for with another token
]]
-- @include "lib/cluster_leadership.lua"

local lease_key, leader_key, components_key = KEYS[6], KEYS[7], KEYS[8]
local component, session_id, owner = ARGV[4], ARGV[5], ARGV[6]

local holder = redis.call('GET', ls_lease_key)
local ls = read_leadership()
if not holds(holder, ls, session_id) then return not_held_reply(holder, ls, {}) end
if not owner_ok(ls[LS_OWNER], owner) then return reply(NOT_OWNER, false, 0, 0, {}) end

local removed = redis.call('HDEL', published_key, component)
local h = redis.call('HMGET', leader_key, F_SESSION, F_LIVE, F_PUBLISHED)
local changes = {}
if h[1] == session_id and h[2] == LIVE_YES and h[3] == '1' then
  redis.call('DEL', lease_key)
  forget_leader(leader_key, component, components_key)
  changes[1] = emit('revoked', component, nil, 0, nil, 'resigned')
end
return reply(DONE, false, 0, 0, changes, {removed})
