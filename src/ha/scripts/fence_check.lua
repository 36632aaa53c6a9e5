--[[
  Whether a fencing token holds now, checked before a long upload starts (its commit
  checks again).

  KEYS[1] the lease  KEYS[2] the leader hash
  ARGV[1] the fencing token, or 'override'

  Returns 1 when it holds, else 0.
]]
-- @include "lib/fence.lua"

if fence_holds(KEYS[1], KEYS[2], ARGV[1]) then return 1 end
return 0
