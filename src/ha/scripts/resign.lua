#!lua flags=allow-oom
--[[
  Releases a lease now, only if this contender and session hold it.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 lease_key  4 leader_key: the leader hash
        5 components_key: the cluster's components (a released lease forgets the component)
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 component  5 contender_id  6 session_id
        7 owner: the name of the caller's access token ('' when the server runs open)
        8 force: '1' for an admin's resignation, whoever's token campaigned, else '0'

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  Returns {code, leader json or false, lease ms left, change payloads...}
  Codes:
    DONE (0)                     released
    FREE (2)                     already free
    HELD (1)                     held by another contender or session (the holder follows)
    NOT_LEASE_OWNER (12)         held by this contender and session, campaigned for with
                                 another access token: nothing changed
]]
-- @include "lib/leadership.lua"

local lease_key, leader_key, components_key = KEYS[3], KEYS[4], KEYS[5]
local component, contender_id, session_id, owner, force = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]

local holder = redis.call('GET', lease_key)
local h = read_leader(leader_key)
local changes = {}
if holder and holder == session_id and h[SESSION] == session_id and h[CONTENDER] == contender_id then
  if force ~= '1' and not owner_ok(redis.call('HGET', leader_key, F_OWNER), owner) then
    return {NOT_LEASE_OWNER, false, 0}
  end
  redis.call('DEL', lease_key)
  forget_leader(leader_key, component, components_key)
  local how = 'resigned'
  if force == '1' then how = 'revoked' end
  changes[1] = emit('revoked', component, nil, 0, nil, how)
  return {DONE, false, 0, unpack(changes)}
end
if not holder then
  settle_expired(leader_key, h, component, changes, components_key)
  return {FREE, false, 0, unpack(changes)}
end
return {HELD, holder_json(holder, h), redis.call('PTTL', lease_key)}
