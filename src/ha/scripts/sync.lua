#!lua flags=allow-oom
--[[
  Reads a cluster's whole leader state with its index, settling on the way every lease
  that ran out unnoticed. A server calls it when it starts watching a cluster and when it
  may have missed changes it cannot replay from the log. For the leases it believed
  live, a vanished leader hash means Redis lost its data: that is recorded as 'expired',
  once, by leaving a tombstone with the lost session id.

  It is also where a rollback of Redis is repaired (docs/design.md §9). When the stored
  index is below the caller's index floor, the index is raised above it (so that every
  watcher is sent the state anew) and the grace period begins. A live lease whose token is
  below the highest the caller knows for its component comes from older data: it ends
  (recorded as 'expired'), so that it is never handed back and its token fences nothing.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 components_key: the cluster's components
        4 grace_key (lib/leadership.lua, start_grace)
        5 + 2k, 6 + 2k the lease and the leader hash of the k-th component (k from 0)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 grace_ms: the longest TTL the caller knows was granted in this cluster
        5 + 3k the k-th component
        6 + 3k the session id the caller believes holds it live, or ''
        7 + 3k the highest fencing token the caller knows for it, or 0

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  Returns {CHANGED}, or {index, rolled back (1 or 0), number of changes, change
  payloads..., then per component: leader json or false, lease ms left}: an index is never
  negative, so the first element tells the two apart
  Codes:
    CHANGED (-9)                 the set names components the caller did not pass: read
                                 it again
]]
-- @include "lib/leadership.lua"

local components_key, grace_key = KEYS[3], KEYS[4]
local grace_ms = tonumber(ARGV[4])

local n = (#KEYS - 4) / 2
local known = 0
for k = 0, n - 1 do
  known = known + redis.call('SISMEMBER', components_key, ARGV[5 + 3 * k])
end
if redis.call('SCARD', components_key) > known then return {CHANGED} end

local rolled = rolled_back()
if rolled then
  redis.call('SET', index_key, int(next_value(redis.call('GET', index_key), index_floor)))
  start_grace(grace_key, grace_ms)
end

local changes = {}
local state = {}
for k = 0, n - 1 do
  local lease_key, leader_key = KEYS[5 + 2 * k], KEYS[6 + 2 * k]
  local component, believed, token_floor = ARGV[5 + 3 * k], ARGV[6 + 3 * k], tonumber(ARGV[7 + 3 * k])
  local holder = redis.call('GET', lease_key)
  local h = read_leader(leader_key)
  if holder and h[LIVE] == LIVE_YES and tonumber(h[TOKEN]) < token_floor then
    redis.call('DEL', lease_key)
    redis.call('HSET', leader_key, F_LIVE, '0')
    holder = false
    changes[#changes + 1] = emit('expired', component, nil, 0)
  elseif not h[SESSION] then
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

local rolled_flag = 0
if rolled then rolled_flag = 1 end
local out = {tonumber(idx), rolled_flag, #changes}
for _, c in ipairs(changes) do out[#out + 1] = c end
for _, s in ipairs(state) do out[#out + 1] = s end
return out
