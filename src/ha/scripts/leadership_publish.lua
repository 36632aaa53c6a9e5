--[[
  Publishes a component's leader information under the cluster's leadership (Flink's
  publishLeaderInformation), only if this session holds it: the component becomes an
  ordinary lease with the leadership's contender, session, token and expiry, and the
  address given. A first publish is a 'granted' change, a new address a 'confirmed' one,
  an unchanged one none.

  KEYS  1 index  2 log  (lib/leadership.lua)
        3 lease_key  4 hash_key  5 pub_key: the leadership's (lib/cluster_leadership.lua)
        6 components_key: the cluster's components
        7 component_lease_key  8 component_leader_key: the component's lease and hash
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 session_id  5 component  6 address
        7 owner: digest of the caller's access token, '' for none

  Returns {code, leader json or false, lease ms left, change payloads...}
  Codes:
    DONE (0)                     published: the component's leader follows
    HELD (1)                     the leadership is held by another session
    FREE (2)                     no leadership lives (one that ran out ends now)
    NOT_OWNER (9)                held by this session, campaigned for with another token
]]
-- @include "lib/leadership.lua"

local lease_key, hash_key, pub_key, components_key = KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local c_lease_key, c_leader_key = KEYS[7], KEYS[8]
local session_id, component, address, owner = ARGV[4], ARGV[5], ARGV[6], ARGV[7]

local changes = {}
local h = holding(lease_key, hash_key, session_id)
if not h then
  local holder = redis.call('GET', lease_key)
  if not holder and redis.call('HGET', hash_key, F_LIVE) == LIVE_YES then end_leadership('expired', changes) end
  return {not_held(holder), false, 0, unpack(changes)}
end
if not owned_by(h, owner) then return {NOT_OWNER, false, 0} end

local pttl = redis.call('PTTL', lease_key)
local c = read_leader(c_leader_key)
if redis.call('SISMEMBER', pub_key, component) == 1 then
  if c[ADDRESS] ~= address then
    redis.call('HSET', c_leader_key, F_ADDRESS, address)
    c[ADDRESS] = address
    changes[1] = emit('confirmed', component, leader_json(c), pttl)
  end
  return {DONE, leader_json(c), pttl, unpack(changes)}
end

-- A per-component lease of the component that ran out unnoticed is recorded first.
if not redis.call('GET', c_lease_key) then settle_expired(c_leader_key, c, component, changes) end
local at = int(math.floor(now_us() / 1000))
redis.call('SET', c_lease_key, session_id, 'PX', pttl)
redis.call('HSET', c_leader_key, F_CONTENDER, h[1], F_SESSION, session_id, F_TOKEN, h[3],
  F_ADDRESS, address, F_ACQUIRED, at, F_LIVE, LIVE_YES, F_TTL, h[4])
redis.call('SADD', components_key, component)
redis.call('SADD', pub_key, component)
local leader = leader_json({h[1], session_id, h[3], address, at})
changes[#changes + 1] = emit('granted', component, leader, pttl)
return {DONE, leader, pttl, unpack(changes)}
