--[[
  Releases a lease now, only if this contender and session hold it.

  KEYS[1] index  KEYS[2] log  KEYS[3] lease  KEYS[4] leader hash
  ARGV[1..3] channel, index floor, log size  (see lib/leadership.lua)
  ARGV[4] component  ARGV[5] contenderId  ARGV[6] session id

  Returns {code, leader json or false, lease ms left, change payloads...}
    1 released   2 already free   0 held by another (the leader returned is the holder)
]]
-- @include "lib/leadership.lua"

local holder = redis.call('GET', KEYS[3])
local h = read_leader(KEYS[4])
local changes = {}
if holder and holder == ARGV[6] and h[2] == ARGV[6] and h[1] == ARGV[5] then
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[4], 'live', '0')
  changes[1] = emit('revoked', ARGV[4], nil, 0)
  return {1, false, 0, unpack(changes)}
end
if not holder then
  settle_expired(KEYS[4], h, ARGV[4], changes)
  return {2, false, 0, unpack(changes)}
end
return {0, holder_json(holder, h), redis.call('PTTL', KEYS[3])}
