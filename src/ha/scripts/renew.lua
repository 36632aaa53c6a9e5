--[[
  Extends a lease, only if this contender and session still hold it (compare-and-set).

  KEYS[1] index  KEYS[2] log  KEYS[3] lease  KEYS[4] leader hash
  ARGV[1..3] channel, index floor, log size  (see lib/leadership.lua)
  ARGV[4] component  ARGV[5] contenderId  ARGV[6] session id  ARGV[7] ttl in ms

  Returns {code, leader json or false, lease ms left, change payloads...}
    1 renewed   0 not the holder (the leader returned is the current one)
]]
-- @include "lib/leadership.lua"

local holder = redis.call('GET', KEYS[3])
local h = read_leader(KEYS[4])
if holder and holder == ARGV[6] and h[2] == ARGV[6] and h[1] == ARGV[5] then
  set_ttl(ARGV[4], ARGV[6], ARGV[7])
  return {1, leader_json(h), tonumber(ARGV[7])}
end

local changes = {}
if not holder then settle_expired(KEYS[4], h, ARGV[4], changes) end
local pttl = 0
if holder then pttl = redis.call('PTTL', KEYS[3]) end
return {0, holder_json(holder, h), pttl, unpack(changes)}
