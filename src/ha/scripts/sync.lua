#!lua flags=allow-oom
--[[
  Reads a cluster's whole leader state with its index, settling on the way every lease
  that ran out unnoticed. A server calls it when it starts watching a cluster and when it
  may have missed changes it cannot replay from the log. For the leases it believed
  live, a vanished leader hash means Redis lost its data, or that the lease ended and was
  forgotten (lib/leadership.lua, forget_leader) without the caller hearing of it: unless the
  log holds an end of that component after the caller's index (a resignation, say, the
  caller has not heard of yet and replays from the log), that is recorded as 'expired',
  once, by leaving a tombstone with the lost session id that expires after TOMBSTONE_MS (by
  then every server that believed it has heard). A member of the components whose hash is
  gone, and that nobody believes live, is dropped.

  It is also where a rollback of Redis is repaired (docs/design.md §9). When the stored
  index is below the caller's index floor, the index is raised above it (so that every
  watcher is sent the state anew) and the grace period begins. A live lease whose token is
  below the highest the caller knows for its component comes from older data: it ends
  (recorded as 'expired'), so that it is never handed back and its token fences nothing.

  A cluster with more components than one call should touch is read in batches (issue
  16: no script runs for time proportional to a tenant's data): then `whole` is '0', each
  call is given a batch of the components, and the caller takes the index the first call
  started from as the state's (leaseStore.ts, sync), replaying the changes after it.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 components_key: the cluster's components
        4 grace_key (lib/leadership.lua, start_grace)
        5 + 2k, 6 + 2k the lease and the leader hash of the k-th component (k from 0)
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 grace_ms: the longest TTL the caller knows was granted in this cluster
        5 whole: '1' when the components given are all of the cluster's (else CHANGED)
        6 + 3k the k-th component
        7 + 3k the session id the caller believes holds it live, or ''
        8 + 3k the highest fencing token the caller knows for it, or 0

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  Returns {CHANGED}, or {index, rolled back (1 or 0), number of changes, change
  payloads..., then per component: leader json or false, lease ms left, then the index
  before this call's changes, then stored (1, or 0 when the cluster has no index: the one
  answered comes from Redis's clock and was not stored)}: an index is never negative, so
  the first element tells the two apart
  Codes:
    CHANGED (-9)                 whole, and the set names components the caller did not
                                 pass: read it again
]]
-- @include "lib/leadership.lua"

local components_key, grace_key = KEYS[3], KEYS[4]
local grace_ms, whole = tonumber(ARGV[4]), ARGV[5] == '1'
local TOMBSTONE_MS = 600000
local FIRST = 6

local n = (#KEYS - 7) / 2

-- Whether the log records an end of `component` (a change to no leader) after the caller's
-- index: then the caller replays it, and the lease's end needs no record of its own. The
-- log holds at most its retention's changes, so the scan is bounded.
local function ended_since(component)
  if index_floor <= 0 then return false end
  local needle = '"c":"' .. component .. '","l":null'
  for _, entry in ipairs(redis.call('XRANGE', log_key, '(' .. int(index_floor) .. '-0', '+')) do
    local fields = entry[2]
    for f = 1, #fields, 2 do
      if fields[f] == 'd' and string.find(fields[f + 1], needle, 1, true) then return true end
    end
  end
  return false
end
if whole then
  local known = 0
  for k = 0, n - 1 do
    known = known + redis.call('SISMEMBER', components_key, ARGV[FIRST + 3 * k])
  end
  if redis.call('SCARD', components_key) > known then return {CHANGED} end
end

local rolled = rolled_back()
if rolled then
  redis.call('SET', index_key, int(next_index(redis.call('GET', index_key), index_floor)))
  start_grace(grace_key, grace_ms)
end
-- A cluster without an index has no data: it is answered an index from Redis's clock,
-- above every index answered before (as long as the clock does not step back), and nothing
-- is stored (issue 16: reads create no state; lib/leadership.lua, store_index).
local start = redis.call('GET', index_key)
if not start then start = int(unborn_index(index_floor)) end

local changes = {}
local state = {}
for k = 0, n - 1 do
  local lease_key, leader_key = KEYS[5 + 2 * k], KEYS[6 + 2 * k]
  local component, believed, token_floor = ARGV[FIRST + 3 * k], ARGV[FIRST + 1 + 3 * k], tonumber(ARGV[FIRST + 2 + 3 * k])
  local holder = redis.call('GET', lease_key)
  local h = read_leader(leader_key)
  if holder and h[LIVE] == LIVE_YES and tonumber(h[TOKEN]) < token_floor then
    redis.call('DEL', lease_key)
    forget_leader(leader_key, component, components_key)
    holder = false
    changes[#changes + 1] = emit('expired', component, nil, 0)
  elseif not h[SESSION] then
    redis.call('SREM', components_key, component)
    if believed ~= '' and not ended_since(component) then
      redis.call('HSET', leader_key, F_SESSION, believed, F_LIVE, '0')
      redis.call('PEXPIRE', leader_key, TOMBSTONE_MS)
      changes[#changes + 1] = emit('expired', component, nil, 0)
    end
  elseif not holder then
    settle_expired(leader_key, h, component, changes, components_key)
  end
  local lj = holder_json(holder, h)
  state[#state + 1] = lj
  if lj then state[#state + 1] = redis.call('PTTL', lease_key) else state[#state + 1] = 0 end
end

local rolled_flag = 0
if rolled then rolled_flag = 1 end
local stored = redis.call('GET', index_key)
local out = {tonumber(stored or start), rolled_flag, #changes}
for _, c in ipairs(changes) do out[#out + 1] = c end
for _, s in ipairs(state) do out[#out + 1] = s end
out[#out + 1] = tonumber(start)
out[#out + 1] = stored and 1 or 0
return out
