--[[
  cleanupAllData, first step: ends every lease of a cluster (pushed as revoked, or expired
  when it had already run out) and deletes the leadership state, change log and index, so
  that no fenced write lands while the caller then deletes the stores' keys.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 components_key
        2 + 2i, 3 + 2i the lease and the leader hash of the i-th component
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        3 + i the i-th component, as read from components_key

  Returns {code, components deleted, keys deleted, change payloads...}
  Codes:
    DONE (0)
    CHANGED (-9)                 the components changed since the caller read them: retry
]]
-- @include "lib/leadership.lua"

local components_key = KEYS[3]

local n = #ARGV - 3
if redis.call('SCARD', components_key) ~= n then return {CHANGED} end
for i = 1, n do
  if redis.call('SISMEMBER', components_key, ARGV[3 + i]) == 0 then return {CHANGED} end
end
local changes = {}
local deleted, keys = 0, 0
for i = 1, n do
  local lease_key, leader_key, component = KEYS[2 + 2 * i], KEYS[3 + 2 * i], ARGV[3 + i]
  local h = read_leader(leader_key)
  if h[LIVE] == LIVE_YES then
    local event = 'expired'
    if redis.call('GET', lease_key) then event = 'revoked' end
    changes[#changes + 1] = emit(event, component, nil, 0)
  end
  local k = redis.call('DEL', lease_key, leader_key)
  if k > 0 then deleted = deleted + 1 end
  keys = keys + k
end
keys = keys + redis.call('DEL', index_key, log_key, components_key)
return {DONE, deleted, keys, unpack(changes)}
