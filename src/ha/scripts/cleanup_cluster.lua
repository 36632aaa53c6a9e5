--[[
  cleanupAllData, last step: ends every lease of a cluster (pushed as revoked, or expired
  when it had already run out) and deletes the leadership state, change log and index.
  The caller deleted the stores' keys before.

  KEYS[1] index  KEYS[2] log  KEYS[3] components
  KEYS[2 + 2i], KEYS[3 + 2i] the lease and leader hash of the i-th component
  ARGV[1..3] channel, index floor, log size  (see lib/leadership.lua)
  ARGV[3 + i] the i-th component, as read from KEYS[3]

  Returns {code, components deleted, keys deleted, change payloads...}: 0 done
    -9 the components changed since the caller read them: retry
]]
-- @include "lib/leadership.lua"

local n = #ARGV - 3
if redis.call('SCARD', KEYS[3]) ~= n then return {-9} end
for i = 1, n do
  if redis.call('SISMEMBER', KEYS[3], ARGV[3 + i]) == 0 then return {-9} end
end
local changes = {}
local deleted, keys = 0, 0
for i = 1, n do
  local h = read_leader(KEYS[3 + 2 * i])
  if h[6] == '1' then
    local event = 'expired'
    if redis.call('GET', KEYS[2 + 2 * i]) then event = 'revoked' end
    changes[#changes + 1] = emit(event, ARGV[3 + i], nil, 0)
  end
  local k = redis.call('DEL', KEYS[2 + 2 * i], KEYS[3 + 2 * i])
  if k > 0 then deleted = deleted + 1 end
  keys = keys + k
end
keys = keys + redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return {0, deleted, keys, unpack(changes)}
