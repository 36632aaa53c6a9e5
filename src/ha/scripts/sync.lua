--[[
  Reads a cluster's whole leader state with its index, settling on the way every lease
  that ran out unnoticed. A server calls it when it starts watching a cluster and when it
  may have missed changes it cannot replay from the log. For the leases it believed
  live, a vanished leader hash means Redis lost its data: that is recorded as 'expired',
  once, by leaving a tombstone with the lost session id.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 components_key: the cluster's components
        4 + 2k, 5 + 2k the lease and the leader hash of the k-th component (k from 0)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 + 2k the k-th component
        5 + 2k the session id the caller believes holds it live, or ''

  Returns {CHANGED}, or {index, number of changes, change payloads..., then per component:
  leader json or false, lease ms left}: an index is never negative, so the first element
  tells the two apart
  Codes:
    CHANGED (-9)                 the set names components the caller did not pass: read
                                 it again
]]
-- @include "lib/leadership.lua"

local components_key = KEYS[3]

local n = (#KEYS - 3) / 2
local known = 0
for k = 0, n - 1 do
  known = known + redis.call('SISMEMBER', components_key, ARGV[4 + 2 * k])
end
if redis.call('SCARD', components_key) > known then return {CHANGED} end

local changes = {}
local state = {}
for k = 0, n - 1 do
  local lease_key, leader_key = KEYS[4 + 2 * k], KEYS[5 + 2 * k]
  local component, believed = ARGV[4 + 2 * k], ARGV[5 + 2 * k]
  local holder = redis.call('GET', lease_key)
  local h = read_leader(leader_key)
  if not h[SESSION] then
    if believed ~= '' then
      redis.call('HSET', leader_key, F_SESSION, believed, F_LIVE, '0')
      redis.call('SADD', components_key, component)
      changes[#changes + 1] = emit('expired', component, nil, 0)
    end
  elseif not holder then
    settle_expired(leader_key, h, component, changes)
  end
  local lj = holder_json(holder, h)
  state[#state + 1] = lj
  if lj then state[#state + 1] = redis.call('PTTL', lease_key) else state[#state + 1] = 0 end
end

local idx = redis.call('GET', index_key)
if not idx then
  idx = int(next_value(nil, index_floor))
  redis.call('SET', index_key, idx)
end

local out = {tonumber(idx), #changes}
for _, c in ipairs(changes) do out[#out + 1] = c end
for _, s in ipairs(state) do out[#out + 1] = s end
return out
