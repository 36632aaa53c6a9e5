#!lua
--[[
  Publishes a component's leader information (its address) under the leadership, only
  for the leadership's live session: the first publish is a `granted` change of that
  component, a new address a `confirmed` one, an unchanged address none.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 ls_lease  4 ls  5 published
        (lib/cluster_leadership.lua)  6 components_key
        7 lease_key  8 leader_key: the component's lease and leader hash
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 component  5 session_id  6 address  7 owner: the name of the caller's access token, or ''
        8 job_managers: the cluster's quota of job managers (lib/quota.lua)

  Flags: none (a full Redis refuses it before it runs: nothing half-written)

  Returns as lib/cluster_leadership.lua's reply; the leader is the component's after DONE,
  the leadership's holder after HELD, followed by its published components
  Codes:
    DONE (0)                     published
    HELD (1)                     the leadership is held by another session
    FREE (2)                     no leadership is held
    NOT_OWNER (11)               held by this session, campaigned for with another token
    QUOTA_EXCEEDED (-10)         a new job manager past the cluster's quota (lib/quota.lua):
                                 {code, 'jobManagers', limit}
]]
-- @include "lib/cluster_leadership.lua"
-- @include "lib/quota.lua"

local components_key, lease_key, leader_key = KEYS[6], KEYS[7], KEYS[8]
local component, session_id, address, owner, job_managers = ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])

local holder = redis.call('GET', ls_lease_key)
local ls = read_leadership()
if not holds(holder, ls, session_id) then return not_held_reply(holder, ls, {}) end
if not owner_ok(ls[LS_OWNER], owner) then return reply(NOT_OWNER, false, 0, 0, {}) end

local left = redis.call('PTTL', ls_lease_key)
local h = read_leader(leader_key)
local changes = {}
if h[SESSION] == session_id and h[LIVE] == LIVE_YES and h[PUBLISHED_AT] == '1' then
  if h[ADDRESS] ~= address then
    redis.call('HSET', leader_key, F_ADDRESS, address)
    redis.call('HSET', published_key, component, address)
    h[ADDRESS] = address
    changes[1] = emit('confirmed', component, leader_json(h), left)
  end
  return reply(DONE, leader_json(h), left, ls[TTL], changes)
end

local refused = quota_job_manager(components_key, component, job_managers)
if refused then return refused end
-- An earlier lease of the component that ran out unnoticed is recorded first.
if not redis.call('GET', lease_key) then settle_expired(leader_key, h, component, changes, components_key) end
redis.call('SET', lease_key, session_id, 'PX', left)
redis.call('HSET', leader_key, F_CONTENDER, ls[CONTENDER], F_SESSION, session_id, F_TOKEN, ls[TOKEN],
  F_ADDRESS, address, F_ACQUIRED, ls[ACQUIRED], F_LIVE, LIVE_YES, F_TTL, ls[TTL], F_PUBLISHED, '1', F_OWNER, ls[LS_OWNER] or '')
redis.call('PERSIST', leader_key) -- a hash kept for a lock delay had a TTL
redis.call('SADD', components_key, component)
redis.call('HSET', published_key, component, address)
local leader = leader_json({ls[CONTENDER], session_id, ls[TOKEN], address, ls[ACQUIRED]})
changes[#changes + 1] = emit('granted', component, leader, left, tonumber(ls[TOKEN]))
return reply(DONE, leader, left, ls[TTL], changes)
