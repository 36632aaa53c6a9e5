--[[
  Releases the cluster's leadership now, only if this contender and session hold it: every
  component published under it becomes leaderless in this one script, each with a change
  of its own, in order.

  KEYS  1 index  2 log  (lib/leadership.lua)
        3 lease_key  4 hash_key  5 pub_key: the leadership's (lib/cluster_leadership.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 contender_id  5 session_id  6 owner: digest of the caller's access token, or ''

  Returns {code, leadership json or false, change payloads...}
  Codes:
    DONE (0)                     released
    FREE (2)                     already free (one that ran out ends now)
    HELD (1)                     held by another contender or session
    NOT_OWNER (9)                held by this session, campaigned for with another token
]]
-- @include "lib/leadership.lua"

local lease_key, hash_key, pub_key = KEYS[3], KEYS[4], KEYS[5]
local contender_id, session_id, owner = ARGV[4], ARGV[5], ARGV[6]

local changes = {}
local h = holding(lease_key, hash_key, session_id)
if h and h[1] == contender_id then
  if not owned_by(h, owner) then return {NOT_OWNER, false} end
  end_leadership('revoked', changes)
  return {DONE, false, unpack(changes)}
end
local holder = redis.call('GET', lease_key)
if not holder then
  if redis.call('HGET', hash_key, F_LIVE) == LIVE_YES then end_leadership('expired', changes) end
  return {FREE, false, unpack(changes)}
end
return {HELD, leadership_json(lease_key, hash_key, pub_key)}
