#!lua flags=allow-oom
--[[
  Extends the leadership's lease and every published component's, only if this contender
  and session hold it (compare-and-set): one renewal however many components it leads.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 ls_lease  4 ls  5 published
        (lib/cluster_leadership.lua)
        6.. lease and leader hash of each published component, as the caller believes
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 origin: the caller's name in the message of new TTLs, so that it skips its own
        5 contender_id  6 session_id  7 ttl (ms), '' to keep the leadership's own
        8 fallback ttl (for a leadership that has none recorded)
        9 owner: the name of the caller's access token, or ''
        10.. the published components, as the caller believes

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  Returns as lib/cluster_leadership.lua's reply; after DONE the ms the lease had left
  before the renewal (its slack, for the metrics), then the published components
  (component, address, flat); after HELD, the published components
  Codes:
    DONE (0)                     renewed
    HELD (1)                     held by another contender or session
    FREE (2)                     not held by anyone (a leadership that ran out is ended)
    NOT_OWNER (11)               held by this session, campaigned for with another token
    CHANGED (-9)                 the published components are not the ones listed: retry
]]
-- @include "lib/cluster_leadership.lua"

local origin, contender_id, session_id = ARGV[4], ARGV[5], ARGV[6]
local ttl, fallback_ttl, owner = ARGV[7], ARGV[8], ARGV[9]
local list = listed_from(6)

local holder = redis.call('GET', ls_lease_key)
local ls = read_leadership()
local refused = refusal(holder, ls, list, contender_id, session_id, owner, false)
if refused then return refused end
if ttl == '' then
  ttl = ls[TTL] or fallback_ttl
elseif ttl ~= ls[TTL] then
  redis.call('HSET', ls_key, F_TTL, ttl)
end
local notices = {}
-- The slack (metrics): what was left before the extension.
local extra = {redis.call('PTTL', ls_lease_key)}
redis.call('PEXPIRE', ls_lease_key, ttl)
for _, c in ipairs(list) do set_ttl(c[2], c[1], session_id, ttl, notices) end
publish_ttls(notices, origin)
for _, x in ipairs(redis.call('HGETALL', published_key)) do extra[#extra + 1] = x end
return reply(DONE, leader_json(ls), tonumber(ttl), ttl, {}, extra)
