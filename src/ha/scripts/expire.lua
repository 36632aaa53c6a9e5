#!lua flags=allow-oom
--[[
  Called by a server when its timer says a lease should have run out: Redis alone decides.
  Records the expiry once, however many servers ask.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 lease_key  4 leader_key: the leader hash
        5 components_key: the cluster's components (an expiry forgets the component)
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 component

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  Returns {code, leader json or false, lease ms left, change payloads...}
  Codes:
    DONE (0)                     expired now: the expiry follows
    HELD (1)                     still held (renewed meanwhile): the holder follows
    FREE (2)                     nothing held, and nothing to record
    PUBLISHED (10)               the lease ran out with the leadership it was published
                                 under: end that (leadership_expire.lua)
]]
-- @include "lib/leadership.lua"

local lease_key, leader_key, components_key = KEYS[3], KEYS[4], KEYS[5]
local component = ARGV[4]

local holder = redis.call('GET', lease_key)
local h = read_leader(leader_key)
if holder then
  return {HELD, holder_json(holder, h), redis.call('PTTL', lease_key)}
end
if h[LIVE] == LIVE_YES and h[PUBLISHED_AT] == '1' then return {PUBLISHED, false, 0} end
local changes = {}
settle_expired(leader_key, h, component, changes, components_key)
if #changes == 0 then return {FREE, false, 0} end
return {DONE, false, 0, unpack(changes)}
