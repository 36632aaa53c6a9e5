--[[
  Called by a server when its timer says a lease should have run out: Redis alone decides.
  Records the expiry once, however many servers ask.

  KEYS[1] index  KEYS[2] log  KEYS[3] lease  KEYS[4] leader hash
  ARGV[1..3] channel, index floor, log size  (see lib/leadership.lua)
  ARGV[4] component

  Returns {code, leader json or false, lease ms left, change payloads...}
    1 still held (renewed meanwhile; the holder returned)   0 expired now   2 nothing held
]]
-- @include "lib/leadership.lua"

local holder = redis.call('GET', KEYS[3])
local h = read_leader(KEYS[4])
if holder then
  return {1, holder_json(holder, h), redis.call('PTTL', KEYS[3])}
end
local changes = {}
settle_expired(KEYS[4], h, ARGV[4], changes)
if #changes == 0 then return {2, false, 0} end
return {0, false, 0, unpack(changes)}
