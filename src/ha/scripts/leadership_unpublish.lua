--[[
  Deletes a component's leader information published under the cluster's leadership
  (Flink's deleteLeaderInformation), only if this session holds it: the component becomes
  leaderless ('revoked').

  KEYS  1 index  2 log  (lib/leadership.lua)
        3 lease_key  4 hash_key  5 pub_key: the leadership's (lib/cluster_leadership.lua)
        6 component_lease_key  7 component_leader_key: the component's lease and hash
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 session_id  5 component  6 owner: digest of the caller's access token, or ''

  Returns {code, removed (1 or 0), change payloads...}
  Codes:
    DONE (0)                     done; removed says whether it was published
    HELD (1)                     the leadership is held by another session
    FREE (2)                     no leadership lives (one that ran out ends now)
    NOT_OWNER (9)                held by this session, campaigned for with another token
]]
-- @include "lib/leadership.lua"

local lease_key, hash_key, pub_key = KEYS[3], KEYS[4], KEYS[5]
local c_lease_key, c_leader_key = KEYS[6], KEYS[7]
local session_id, component, owner = ARGV[4], ARGV[5], ARGV[6]

local changes = {}
local h = holding(lease_key, hash_key, session_id)
if not h then
  local holder = redis.call('GET', lease_key)
  if not holder and redis.call('HGET', hash_key, F_LIVE) == LIVE_YES then end_leadership('expired', changes) end
  return {not_held(holder), 0, unpack(changes)}
end
if not owned_by(h, owner) then return {NOT_OWNER, 0} end
if redis.call('SREM', pub_key, component) == 0 then return {DONE, 0} end
redis.call('DEL', c_lease_key)
redis.call('HSET', c_leader_key, F_LIVE, '0')
changes[1] = emit('revoked', component, nil, 0)
return {DONE, 1, unpack(changes)}
