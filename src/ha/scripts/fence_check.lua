--[[
  Whether a fencing token holds now, checked before a long upload starts (its commit
  checks again).

  KEYS  1 lease_key: the lease  2 leader_key: the leader hash
        3 ls_lease_key  4 ls_key: the cluster's leadership lease and hash (lib/fence.lua)
  ARGV  1 token: the fencing token, or 'override'

  Returns the code
  Codes:
    DONE (0)                     the fence holds
    FENCE_STALE (-1)             it does not
]]
-- @include "lib/codes.lua"
-- @include "lib/fence.lua"

local lease_key, leader_key, ls_lease_key, ls_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token = ARGV[1]

if fence_holds(lease_key, leader_key, token, ls_lease_key, ls_key) then return DONE end
return FENCE_STALE
