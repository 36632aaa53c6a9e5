--[[
  Reads a cluster's whole leader state with its index, settling on the way every lease
  that ran out unnoticed. A server calls it when it starts watching a cluster and when it
  may have missed changes it cannot replay from the log. For the leases it believed
  live, a vanished leader hash means Redis lost its data: that is recorded as 'expired',
  once, by leaving a tombstone with the lost session id.

  KEYS[1] index  KEYS[2] log  KEYS[3] the cluster's set of components
  KEYS[4 + 2k] lease, KEYS[5 + 2k] leader hash of the k-th component (k from 0)
  ARGV[1..3] channel, index floor, log size  (see lib/leadership.lua)
  ARGV[4 + 2k] k-th component  ARGV[5 + 2k] session id the caller believes live, or ''

  Returns {-1} when the set names components the caller did not pass (read it again), else
  {index, number of changes, change payloads..., then per component: leader json or false,
  lease ms left}
]]
-- @include "lib/leadership.lua"

local n = (#KEYS - 3) / 2
local known = 0
for k = 0, n - 1 do
  known = known + redis.call('SISMEMBER', KEYS[3], ARGV[4 + 2 * k])
end
if redis.call('SCARD', KEYS[3]) > known then return {-1} end

local changes = {}
local state = {}
for k = 0, n - 1 do
  local lkey, hkey, comp, believed = KEYS[4 + 2 * k], KEYS[5 + 2 * k], ARGV[4 + 2 * k], ARGV[5 + 2 * k]
  local holder = redis.call('GET', lkey)
  local h = read_leader(hkey)
  if not h[2] then
    if believed ~= '' then
      redis.call('HSET', hkey, 'sid', believed, 'live', '0')
      redis.call('SADD', KEYS[3], comp)
      changes[#changes + 1] = emit('expired', comp, nil, 0)
    end
  elseif not holder then
    settle_expired(hkey, h, comp, changes)
  end
  local lj = holder_json(holder, h)
  state[#state + 1] = lj
  if lj then state[#state + 1] = redis.call('PTTL', lkey) else state[#state + 1] = 0 end
end

local idx = redis.call('GET', KEYS[1])
if not idx then
  idx = int(next_value(nil, tonumber(ARGV[2])))
  redis.call('SET', KEYS[1], idx)
end

local out = {tonumber(idx), #changes}
for _, c in ipairs(changes) do out[#out + 1] = c end
for _, s in ipairs(state) do out[#out + 1] = s end
return out
