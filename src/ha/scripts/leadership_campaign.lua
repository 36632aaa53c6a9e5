--[[
  Takes the cluster's leadership if it is free and no per-component lease lives; the
  contender that holds it (with the same access token) gets its own grant back, extended
  with every component published under it.

  KEYS  1 index  2 log  (lib/leadership.lua)
        3 lease_key  4 hash_key  5 pub_key: the leadership's (lib/cluster_leadership.lua)
        6 components_key: the cluster's components  7 grace_key (lib/leadership.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 contender_id  5 session_id: the session of a new grant  6 ttl (ms)
        7 token_floor: the highest token the caller knows in the cluster
        8 grace_ms: the longest TTL the caller knows was granted in this cluster
        9 owner: digest of the caller's access token, '' for none

  Returns {code, leadership json or false, change payloads...}, or for
  COMPONENT_LEASES_HELD {code, then per live lease: component, leader json, lease ms left}
  Codes:
    DONE (0)                     granted now
    ALREADY_HELD (3)             held by this contender already: extended
    HELD (1)                     held by another contender (or access token)
    ROLLED_BACK (5)              Redis lost changes the caller saw: nothing granted, and the
                                 grace period began (its length follows instead of json)
    IN_GRACE (6)                 free, but in the grace period (its time left follows)
    COMPONENT_LEASES_HELD (8)    per-component leases live in the cluster
]]
-- @include "lib/leadership.lua"

local lease_key, hash_key, pub_key, components_key, grace_key = KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local contender_id, session_id, ttl = ARGV[4], ARGV[5], ARGV[6]
local token_floor, grace_ms, owner = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]

if rolled_back() then
  start_grace(grace_key, grace_ms)
  return {ROLLED_BACK, grace_ms}
end

local holder = redis.call('GET', lease_key)
local changes = {}
if holder then
  local h = holding(lease_key, hash_key, holder)
  if h and h[1] == contender_id and owned_by(h, owner) then
    local notices = {}
    extend_leadership(lease_key, hash_key, pub_key, holder, ttl, notices)
    publish_ttls(notices)
    return {ALREADY_HELD, leadership_json(lease_key, hash_key, pub_key)}
  end
  return {HELD, leadership_json(lease_key, hash_key, pub_key)}
end
-- A leadership that ran out unnoticed ends now, with every component it published.
if redis.call('HGET', hash_key, F_LIVE) == LIVE_YES then end_leadership('expired', changes) end

local grace_left = redis.call('PTTL', grace_key)
if grace_left > 0 then return {IN_GRACE, grace_left, unpack(changes)} end

-- A cluster is led by one leadership or by per-component leases, never both.
local p = cluster_prefix(lease_key)
-- The token is above every component's too: a component published under the leadership
-- is fenced by it, and a fencing token never goes backwards.
local live = {}
for _, c in ipairs(redis.call('SMEMBERS', components_key)) do
  local sid = redis.call('GET', p .. 'lease:' .. c)
  local h = read_leader(p .. 'leader:' .. c)
  if tonumber(h[TOKEN] or 0) > token_floor then token_floor = tonumber(h[TOKEN]) end
  if sid then
    local lj = holder_json(sid, h)
    if lj then
      live[#live + 1] = c
      live[#live + 1] = lj
      live[#live + 1] = redis.call('PTTL', p .. 'lease:' .. c)
    end
  end
end
if #live > 0 then return {COMPONENT_LEASES_HELD, unpack(live)} end

local prev = redis.call('HGET', hash_key, F_TOKEN)
local tok = int(next_value(prev, token_floor))
local at = int(math.floor(now_us() / 1000))
redis.call('SET', lease_key, session_id, 'PX', ttl)
redis.call('DEL', pub_key, hash_key)
redis.call('HSET', hash_key, F_CONTENDER, contender_id, F_SESSION, session_id, F_TOKEN, tok,
  F_ACQUIRED, at, F_LIVE, LIVE_YES, F_TTL, ttl, F_OWNER, owner)
return {DONE, leadership_json(lease_key, hash_key, pub_key), unpack(changes)}
