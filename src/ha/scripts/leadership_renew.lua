--[[
  Extends the cluster's leadership and every component published under it, only if this
  contender and session hold it: one renewal for all of them.

  KEYS  1 index  2 log  (lib/leadership.lua)
        3 lease_key  4 hash_key  5 pub_key: the leadership's (lib/cluster_leadership.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 contender_id  5 session_id  6 ttl in ms, '' to keep the leadership's own
        7 owner: digest of the caller's access token, '' for none

  Returns {code, leadership json or false, change payloads...}
  Codes:
    DONE (0)                     renewed
    HELD (1)                     held by another contender or session
    FREE (2)                     not held by anyone (one that ran out ends now)
    NOT_OWNER (9)                held by this session, campaigned for with another token
]]
-- @include "lib/leadership.lua"

local lease_key, hash_key, pub_key = KEYS[3], KEYS[4], KEYS[5]
local contender_id, session_id, ttl, owner = ARGV[4], ARGV[5], ARGV[6], ARGV[7]

local h = holding(lease_key, hash_key, session_id)
if h and h[1] == contender_id then
  if not owned_by(h, owner) then return {NOT_OWNER, false} end
  if ttl == '' then ttl = h[4] end
  local notices = {}
  extend_leadership(lease_key, hash_key, pub_key, session_id, ttl, notices)
  publish_ttls(notices)
  return {DONE, leadership_json(lease_key, hash_key, pub_key)}
end
local changes = {}
local holder = redis.call('GET', lease_key)
if not holder and redis.call('HGET', hash_key, F_LIVE) == LIVE_YES then end_leadership('expired', changes) end
return {not_held(holder), leadership_json(lease_key, hash_key, pub_key), unpack(changes)}
