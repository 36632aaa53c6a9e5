--[[
  Takes a component's lease if it is free (SET NX PX); a contender that holds it gets its
  own grant back, with the lease extended and the address confirmed when one is given.

  KEYS[1] index  KEYS[2] log  (see lib/leadership.lua)
  KEYS[3] lease  KEYS[4] leader hash  KEYS[5] the cluster's set of components
  ARGV[1..3] channel, index floor, log size  (see lib/leadership.lua)
  ARGV[4] component  ARGV[5] contenderId  ARGV[6] session id for a new grant
  ARGV[7] ttl in ms  ARGV[8] address or ''  ARGV[9] token floor

  Returns {code, leader json or false, lease ms left, change payloads...}
    1 granted now   2 already held by this contender   0 held by another
]]
-- @include "lib/leadership.lua"

local holder = redis.call('GET', KEYS[3])
local h = read_leader(KEYS[4])
local changes = {}

if holder then
  if holder == h[2] and h[1] == ARGV[5] and h[6] == '1' then
    local notices = {}
    set_ttl(KEYS[3], ARGV[4], h[2], ARGV[7], notices)
    publish_ttls(notices)
    if h[7] ~= ARGV[7] then redis.call('HSET', KEYS[4], 'ttl', ARGV[7]) end
    if ARGV[8] ~= '' and ARGV[8] ~= h[4] then
      redis.call('HSET', KEYS[4], 'addr', ARGV[8])
      h[4] = ARGV[8]
      changes[1] = emit('confirmed', ARGV[4], leader_json(h), tonumber(ARGV[7]))
    end
    return {2, leader_json(h), tonumber(ARGV[7]), unpack(changes)}
  end
  return {0, holder_json(holder, h), redis.call('PTTL', KEYS[3])}
end

settle_expired(KEYS[4], h, ARGV[4], changes)

local tok = int(next_value(h[3], tonumber(ARGV[9])))
local at = int(math.floor(now_us() / 1000))
redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[7], 'NX')
redis.call('HSET', KEYS[4], 'cid', ARGV[5], 'sid', ARGV[6], 'tok', tok, 'addr', ARGV[8], 'at', at, 'live', '1', 'ttl', ARGV[7])
redis.call('SADD', KEYS[5], ARGV[4])
local leader = leader_json({ARGV[5], ARGV[6], tok, ARGV[8], at})
changes[#changes + 1] = emit('granted', ARGV[4], leader, tonumber(ARGV[7]))
return {1, leader, tonumber(ARGV[7]), unpack(changes)}
