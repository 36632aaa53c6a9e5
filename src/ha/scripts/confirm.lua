#!lua
--[[
  Publishes the leader's address (Flink's confirmLeadership), only if this contender and
  session hold the lease. An unchanged address records no change.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 lease_key  4 leader_key: the leader hash
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 component  5 contender_id  6 session_id  7 address
        8 owner: the name of the caller's access token ('' when the server runs open)

  Flags: none (a full Redis refuses it before it runs: nothing half-written)

  Returns {code, leader json or false, lease ms left, change payloads...}; the leader is the
  current one
  Codes:
    DONE (0)                     confirmed
    HELD (1)                     held by another contender or session
    FREE (2)                     not held by anyone
    NOT_LEASE_OWNER (12)         held by this contender and session, campaigned for with
                                 another access token: nothing changed
]]
-- @include "lib/leadership.lua"

local lease_key, leader_key = KEYS[3], KEYS[4]
local component, contender_id, session_id, address, owner = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]

local holder = redis.call('GET', lease_key)
local h = read_leader(leader_key)
local changes = {}
if holder and holder == session_id and h[SESSION] == session_id and h[CONTENDER] == contender_id then
  if not owner_ok(redis.call('HGET', leader_key, F_OWNER), owner) then return {NOT_LEASE_OWNER, false, 0} end
  local pttl = redis.call('PTTL', lease_key)
  if h[ADDRESS] ~= address then
    redis.call('HSET', leader_key, F_ADDRESS, address)
    h[ADDRESS] = address
    changes[1] = emit('confirmed', component, leader_json(h), pttl)
  end
  return {DONE, leader_json(h), pttl, unpack(changes)}
end

if not holder then settle_expired(leader_key, h, component, changes) end
local pttl = 0
if holder then pttl = redis.call('PTTL', lease_key) end
return {not_held(holder), holder_json(holder, h), pttl, unpack(changes)}
