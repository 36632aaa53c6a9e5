#!lua flags=no-writes
--[[
  Reads the cluster's leadership: its holder and the components published under it.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 ls_lease  4 ls  5 published
        (lib/cluster_leadership.lua)
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)

  Flags: no-writes (it only reads: Redis runs it on a full Redis, or a replica)

  Returns as lib/cluster_leadership.lua's reply, the published components (component,
  address, flat) following HELD
  Codes:
    HELD (1)                     a leadership is held: the holder follows
    FREE (2)                     none is
]]
-- @include "lib/cluster_leadership.lua"

local holder = redis.call('GET', ls_lease_key)
return not_held_reply(holder, read_leadership(), {})
