-- A cluster's leadership (issue 22, docs/design.md §3a): one lease over several
-- components, Flink's model. Pasted into lib/leadership.lua after emit, so that every
-- script that settles leases also settles a leadership that ran out.
--
-- Its keys share the cluster's hash tag (ids.ts ClusterKeys):
--   <prefix>leadership      the lease: the session id, with a TTL
--   <prefix>leadership:h    its hash: F_CONTENDER, F_SESSION, F_TOKEN, F_ACQUIRED, F_LIVE,
--                           F_TTL as a component's leader hash, and F_OWNER
--   <prefix>leadership:pub  the components published under it
-- A published component is an ordinary lease (lease key with the same session id and the
-- same expiry, leader hash, member of the components set), so readers see no difference.
-- Scripts that settle a component may meet a published one without knowing the cluster
-- has a leadership; they find its keys from the component's own keys' prefix, which is
-- in the same hash slot (decisions.md).
-- @include "lib/leader_hash.lua"

local F_OWNER = 'own' -- digest of the access token that campaigned, '' for none

local function cluster_prefix(key)
  return string.match(key, '^(lh:%b{}:)')
end

local function leadership_keys(key)
  local p = cluster_prefix(key)
  return p .. 'leadership', p .. 'leadership:h', p .. 'leadership:pub'
end

-- Singletons first, then job managers by job id: ids.ts compareComponents.
local RANK = {resourcemanager = 1, dispatcher = 2, rest = 3}
local function by_component(a, b)
  local ra, rb = RANK[a] or 99, RANK[b] or 99
  if ra ~= rb then return ra < rb end
  return a < b
end

local function published(pub_key)
  local m = redis.call('SMEMBERS', pub_key)
  table.sort(m, by_component)
  return m
end

-- Ends the leadership: every component published under it becomes leaderless in this
-- one script, each with a change (and an index) of its own, in order.
local function end_leadership(event, changes)
  local lease_key, hash_key, pub_key = leadership_keys(index_key)
  local p = cluster_prefix(index_key)
  for _, c in ipairs(published(pub_key)) do
    redis.call('DEL', p .. 'lease:' .. c)
    if redis.call('HGET', p .. 'leader:' .. c, F_LIVE) == LIVE_YES then
      redis.call('HSET', p .. 'leader:' .. c, F_LIVE, '0')
      changes[#changes + 1] = emit(event, c, nil, 0)
    end
  end
  redis.call('DEL', lease_key, pub_key)
  if redis.call('EXISTS', hash_key) == 1 then redis.call('HSET', hash_key, F_LIVE, '0') end
end

-- A published component whose lease ran out: its leadership ran out with it (both keys
-- were given the same expiry in one script). Ends the whole leadership; false when the
-- component is not published under one that ran out.
local function leadership_ran_out(component, changes)
  local lease_key, _, pub_key = leadership_keys(index_key)
  if redis.call('SISMEMBER', pub_key, component) == 0 or redis.call('EXISTS', lease_key) == 1 then return false end
  end_leadership('expired', changes)
  return true
end

-- The leadership's hash, when `session_id` holds it live; else false.
local function holding(lease_key, hash_key, session_id)
  local h = redis.call('HMGET', hash_key, F_CONTENDER, F_SESSION, F_TOKEN, F_TTL, F_LIVE, F_OWNER, F_ACQUIRED)
  if redis.call('GET', lease_key) == session_id and h[2] == session_id and h[5] == LIVE_YES then return h end
  return false
end

-- Whether the caller's access token (a digest, '' for none) is the one that campaigned.
local function owned_by(h, owner)
  return not h[6] or h[6] == '' or h[6] == owner
end

-- The live leadership as JSON (leadership.ts decodes it), or false when none lives.
-- Session ids and components need no escaping; the token is digits.
local function leadership_json(lease_key, hash_key, pub_key)
  local sid = redis.call('GET', lease_key)
  local h = redis.call('HMGET', hash_key, F_CONTENDER, F_SESSION, F_TOKEN, F_TTL, F_LIVE)
  if not sid or sid ~= h[2] or h[5] ~= LIVE_YES then return false end
  local p = cluster_prefix(lease_key)
  local comps = {}
  for _, c in ipairs(published(pub_key)) do
    local a = redis.call('HGET', p .. 'leader:' .. c, F_ADDRESS) or ''
    comps[#comps + 1] = '{"c":"' .. c .. '","a":' .. cjson.encode(a) .. '}'
  end
  return '{"cid":' .. cjson.encode(h[1]) .. ',"sid":"' .. sid .. '","tok":' .. h[3] .. ',"ttl":' .. h[4]
    .. ',"r":' .. redis.call('PTTL', lease_key) .. ',"comps":[' .. table.concat(comps, ',') .. ']}'
end

-- Extends the leadership and every component published under it to `ttl`, all with the
-- same expiry; the components' new TTLs are noted for every server, as set_ttl does
-- (lib/leadership.lua, which pastes this file in before it defines set_ttl).
local function extend_leadership(lease_key, hash_key, pub_key, session_id, ttl, notices)
  local p = cluster_prefix(lease_key)
  redis.call('PEXPIRE', lease_key, ttl)
  redis.call('HSET', hash_key, F_TTL, ttl)
  for _, c in ipairs(redis.call('SMEMBERS', pub_key)) do
    redis.call('PEXPIRE', p .. 'lease:' .. c, ttl)
    notices[#notices + 1] = '["' .. c .. '","' .. session_id .. '",' .. ttl .. ']'
  end
end
