--[[
  Reads the cluster's leadership.

  KEYS  1 index  2 log  (lib/leadership.lua)
        3 lease_key  4 hash_key  5 pub_key: the leadership's (lib/cluster_leadership.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)

  Returns {code, leadership json or false}
  Codes:
    DONE (0)
]]
-- @include "lib/leadership.lua"

local lease_key, hash_key, pub_key = KEYS[3], KEYS[4], KEYS[5]

return {DONE, leadership_json(lease_key, hash_key, pub_key)}
