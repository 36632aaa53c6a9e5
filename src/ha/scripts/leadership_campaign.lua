#!lua
--[[
  Takes the cluster's leadership if it is free and no per-component lease lives there; the
  contender that holds it gets its own grant back, with the lease (and every published
  component's) extended. A leadership that ran out unnoticed is ended first.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 ls_lease  4 ls  5 published
        (lib/cluster_leadership.lua)  6 components_key: the cluster's components
        7 grace_key (lib/leadership.lua, start_grace)
        8.. lease and leader hash of each component of the cluster, as read
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 contender_id  5 session_id: the session of a new grant  6 ttl (ms)
        7 owner: the name of the caller's access token, or ''  8 token_floor
        9 grace_ms: the longest TTL the caller knows was granted in this cluster
        10.. the components, as read from components_key

  Flags: none (a full Redis refuses it before it runs: nothing half-written)

  Returns as lib/cluster_leadership.lua's reply, the holder's published components
  (component, address, flat) following HELD and ALREADY_HELD, and each live
  per-component leader (component, leader json, lease ms left, flat) following
  COMPONENT_LEASES_HELD
  Codes:
    DONE (0)                     granted now
    ALREADY_HELD (3)             held by this contender already: extended
    HELD (1)                     held by another contender or session
    COMPONENT_LEASES_HELD (9)    per-component leases live in the cluster
    ROLLED_BACK (5)              Redis lost changes the caller saw: nothing granted, and the
                                 grace period began (its length follows, as lease ms)
    IN_GRACE (6)                 free, but in the grace period after a rollback
    CHANGED (-9)                 the components changed since the caller read them: retry
]]
-- @include "lib/cluster_leadership.lua"

local components_key, grace_key = KEYS[6], KEYS[7]
local contender_id, session_id, ttl, owner = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local token_floor, grace_ms = tonumber(ARGV[8]), tonumber(ARGV[9])
local list = listed_from(8)

if rolled_back() then
  start_grace(grace_key, grace_ms)
  return reply(ROLLED_BACK, false, grace_ms, 0, {})
end
if not names_exactly(list, components_key, 'SCARD', 'SISMEMBER') then return {CHANGED} end

local holder = redis.call('GET', ls_lease_key)
local ls = read_leadership()
if holder then
  if holds(holder, ls, holder) and ls[CONTENDER] == contender_id and owner_ok(ls[LS_OWNER], owner) then
    local notices = {}
    redis.call('PEXPIRE', ls_lease_key, ttl)
    for _, c in ipairs(list) do
      if redis.call('HEXISTS', published_key, c[1]) == 1 then set_ttl(c[2], c[1], holder, ttl, notices) end
    end
    publish_ttls(notices)
    if ls[TTL] ~= ttl then redis.call('HSET', ls_key, F_TTL, ttl) end
    return reply(ALREADY_HELD, leader_json(ls), tonumber(ttl), ttl, {}, redis.call('HGETALL', published_key))
  end
  return not_held_reply(holder, ls, {})
end

local changes = {}
if ls[LIVE] == LIVE_YES then changes = end_leadership(list, ls, 'expired', components_key) end

-- A leadership never leads beside per-component leases; their tokens are its floor, so
-- that a component's token still only grows once it is published.
local leaders = {}
local top = token_base(ls[TOKEN])
for _, c in ipairs(list) do
  local h = read_leader(c[3])
  local lease = redis.call('GET', c[2])
  if not h[SESSION] then
    -- A member whose lease ended where the set was not declared (lib/leadership.lua,
    -- forget_leader): dropped here.
    redis.call('SREM', components_key, c[1])
  elseif lease then
    local lj = holder_json(lease, h)
    if lj then
      leaders[#leaders + 1] = c[1]
      leaders[#leaders + 1] = lj
      leaders[#leaders + 1] = redis.call('PTTL', c[2])
    end
  else
    settle_expired(c[3], h, c[1], changes, components_key)
  end
  local t = tonumber(h[TOKEN])
  if t and t > top then top = t end
end
if #leaders > 0 then return reply(COMPONENT_LEASES_HELD, false, 0, 0, changes, leaders) end

local grace_left = redis.call('PTTL', grace_key)
if grace_left > 0 then return reply(IN_GRACE, false, grace_left, 0, changes) end

local tok = int(next_value(top, token_floor))
local at = int(math.floor(now_us() / 1000))
redis.call('SET', ls_lease_key, session_id, 'PX', ttl)
redis.call('DEL', ls_key, published_key)
redis.call('HSET', ls_key, F_CONTENDER, contender_id, F_SESSION, session_id, F_TOKEN, tok, F_ACQUIRED, at,
  F_LIVE, LIVE_YES, F_TTL, ttl, F_OWNER, owner)
local leader = leader_json({contender_id, session_id, tok, false, at})
history_grant(LEADERSHIP, leader)
return reply(DONE, with_gap(leader), tonumber(ttl), ttl, changes)
