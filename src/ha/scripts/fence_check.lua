--[[
  Whether a fencing token holds now, checked before a long upload starts (its commit
  checks again).

  KEYS  1 lease_key: the lease  2 leader_key: the leader hash
  ARGV  1 token: the fencing token, or 'override'

  Returns the code
  Codes:
    DONE (0)                     the fence holds
    FENCE_STALE (-1)             it does not
]]
-- @include "lib/codes.lua"
-- @include "lib/fence.lua"

local lease_key, leader_key = KEYS[1], KEYS[2]
local token = ARGV[1]

if fence_holds(lease_key, leader_key, token) then return DONE end
return FENCE_STALE
