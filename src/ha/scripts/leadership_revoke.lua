--[[
  An admin revokes the cluster's leadership (Flink then revokes it in the process that
  held it): every component published under it becomes leaderless in this one script,
  each with a change of its own, in order.

  KEYS  1 index  2 log  (lib/leadership.lua)
        3 lease_key  4 hash_key  5 pub_key: the leadership's (lib/cluster_leadership.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 session_id: revoke only this session's leadership; '' for whichever lives

  Returns {code, leadership json or false, change payloads...}
  Codes:
    DONE (0)                     revoked
    FREE (2)                     no leadership lives (one that ran out ends now)
    HELD (1)                     held by another session than the one named
]]
-- @include "lib/leadership.lua"

local lease_key, hash_key, pub_key = KEYS[3], KEYS[4], KEYS[5]
local session_id = ARGV[4]

local changes = {}
local holder = redis.call('GET', lease_key)
if holder and holding(lease_key, hash_key, holder) then
  if session_id ~= '' and session_id ~= holder then return {HELD, leadership_json(lease_key, hash_key, pub_key)} end
  end_leadership('revoked', changes)
  return {DONE, false, unpack(changes)}
end
if redis.call('HGET', hash_key, F_LIVE) == LIVE_YES then end_leadership('expired', changes) end
return {FREE, false, unpack(changes)}
