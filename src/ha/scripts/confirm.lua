--[[
  Publishes the leader's address (Flink's confirmLeadership), only if this contender and
  session hold the lease. An unchanged address records no change.

  KEYS[1] index  KEYS[2] log  KEYS[3] lease  KEYS[4] leader hash
  ARGV[1..3] channel, index floor, log size  (see lib/leadership.lua)
  ARGV[4] component  ARGV[5] contenderId  ARGV[6] session id  ARGV[7] address

  Returns {code, leader json or false, lease ms left, change payloads...}
    1 confirmed   0 not the holder (the leader returned is the current one)
]]
-- @include "lib/leadership.lua"

local holder = redis.call('GET', KEYS[3])
local h = read_leader(KEYS[4])
local changes = {}
if holder and holder == ARGV[6] and h[2] == ARGV[6] and h[1] == ARGV[5] then
  local pttl = redis.call('PTTL', KEYS[3])
  if h[4] ~= ARGV[7] then
    redis.call('HSET', KEYS[4], 'addr', ARGV[7])
    h[4] = ARGV[7]
    changes[1] = emit('confirmed', ARGV[4], leader_json(h), pttl)
  end
  return {1, leader_json(h), pttl, unpack(changes)}
end

if not holder then settle_expired(KEYS[4], h, ARGV[4], changes) end
local pttl = 0
if holder then pttl = redis.call('PTTL', KEYS[3]) end
return {0, holder_json(holder, h), pttl, unpack(changes)}
