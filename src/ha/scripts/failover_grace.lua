#!lua flags=allow-oom
--[[
  Starts a cluster's grace period after the Redis now serving may have lost leases this
  server acknowledged: a failover to a primary that no replica acknowledgement covered, or
  a Redis that lost its data (docs/design.md §9). No lease of the cluster is granted until
  it ends (campaign.lua answers IN_GRACE); a longer grace already running is kept.
  Flags: allow-oom (a full Redis must still take the small key that prevents two leaders).

  KEYS  1 index  2 log  (lib/leadership.lua)
        3 grace_key (lib/leadership.lua, start_grace)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 grace_ms: how long a lease this server acknowledged may still run

  Returns {DONE, grace ms left}
  Codes:
    DONE (0)
]]
-- @include "lib/leadership.lua"

local grace_key, grace_ms = KEYS[3], tonumber(ARGV[4])
start_grace(grace_key, grace_ms)
return {DONE, redis.call('PTTL', grace_key)}
