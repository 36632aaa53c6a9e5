#!lua flags=no-writes
--[[
  Reads what the cluster listing (GET /v1/clusters) shows of one cluster, all of it at one
  instant: its index, its singletons' leaders, its leadership and how many job managers it
  has. One call per cluster, every key of that one cluster (one hash tag), so that it runs
  on Redis Cluster as any other script; a page of the listing sends its calls pipelined.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 ls_lease  4 ls  5 published
        (lib/cluster_leadership.lua)  6 components_key: the cluster's components
        7 + 2k, 8 + 2k the lease and the leader hash of the k-th singleton (k from 0)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua; unused: '' 0 0)
        4 + k the k-th singleton's name

  Flags: no-writes (it only reads: Redis runs it on a full Redis, or a replica)

  Returns {index (false when the cluster has no index: no lease was ever granted in it),
  job managers (members of the components that are no singleton), leadership leader json
  or false, its ms left, its ttl, how many components it publishes, then per singleton:
  leader json or false, lease ms left}
  Codes: none (the first element is the index)
]]
-- @include "lib/cluster_leadership.lua"

local components_key = KEYS[6]
local FIRST_KEY, FIRST_ARG = 7, 4

-- The leader hash's holder when its lease lives (the lease key holds its session).
local function live_holder(lease_key, h)
  return h[LIVE] == LIVE_YES and h[SESSION] and redis.call('GET', lease_key) == h[SESSION]
end

local n = (#KEYS - FIRST_KEY + 1) / 2
local jobs = redis.call('SCARD', components_key)
for k = 0, n - 1 do
  jobs = jobs - redis.call('SISMEMBER', components_key, ARGV[FIRST_ARG + k])
end

local out = {redis.call('GET', index_key), jobs}
local ls = read_leadership()
if live_holder(ls_lease_key, ls) then
  out[3] = leader_json(ls)
  out[4] = math.max(0, redis.call('PTTL', ls_lease_key))
  out[5] = tonumber(ls[TTL]) or 0
  out[6] = redis.call('HLEN', published_key)
else
  out[3], out[4], out[5], out[6] = false, 0, 0, 0
end
for k = 0, n - 1 do
  local lease_key = KEYS[FIRST_KEY + 2 * k]
  local h = read_leader(KEYS[FIRST_KEY + 2 * k + 1])
  if live_holder(lease_key, h) then
    out[#out + 1] = leader_json(h)
    out[#out + 1] = math.max(0, redis.call('PTTL', lease_key))
  else
    out[#out + 1] = false
    out[#out + 1] = 0
  end
end
return out
