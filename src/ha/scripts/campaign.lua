#!lua
--[[
  Takes a component's lease if it is free (SET NX PX); a contender that holds it gets its
  own grant back, with the lease extended and the address confirmed when one is given.

  KEYS  1 index  2 log  (lib/leadership.lua)
        3 lease_key  4 leader_key: the leader hash  5 components_key: the cluster's components
        6 grace_key: set while no lease may be granted (lib/leadership.lua, start_grace)
        7 ls_key: the cluster's leadership hash (lib/cluster_leadership.lua)
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 component  5 contender_id  6 session_id: the session of a new grant
        7 ttl (ms)  8 address, or ''  9 token_floor
        10 grace_ms: the longest TTL the caller knows was granted in this cluster
        11 lock_delay: ms the component stays free of grants after this grant expires
        12 owner: the name of the caller's access token ('' when the server runs open),
           kept with the grant: only that token renews, confirms or resigns it
        13 job_managers: the cluster's quota of job managers (lib/quota.lua)

  Flags: none (a full Redis refuses it before it runs: nothing half-written)

  Returns {code, leader json or false, lease ms left, change payloads...}
  Codes:
    DONE (0)                     granted now (the leader json with its takeover gap, "g",
                                 when the history knows one: lib/history.lua, with_gap)
    ALREADY_HELD (3)             held by this contender already (campaigned for with this
                                 token): extended (and confirmed)
    HELD (1)                     held by another contender or session
    LEADERSHIP_HELD (8)          a leadership leads the cluster (or ran out and was not
                                 ended yet: then the lease ms left is 0)
    ROLLED_BACK (5)              Redis lost changes the caller saw: nothing granted, and the
                                 grace period began (its length follows, as lease ms)
    IN_GRACE (6)                 free, but in the grace period after a rollback (its time
                                 left follows, as lease ms)
    LOCK_DELAY (7)               free, but in the lock delay after the last lease expired
                                 (its time left follows, as lease ms; the expiry too)
    QUOTA_EXCEEDED (-10)         a new job manager past the cluster's quota (lib/quota.lua):
                                 {code, 'jobManagers', limit}
]]
-- @include "lib/leadership.lua"
-- @include "lib/quota.lua"

local lease_key, leader_key, components_key, grace_key, ls_key = KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local component, contender_id, session_id = ARGV[4], ARGV[5], ARGV[6]
local ttl, address, token_floor, grace_ms = ARGV[7], ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10])
local lock_delay, owner, job_managers = ARGV[11], ARGV[12], tonumber(ARGV[13])

-- Before anything else: a lease restored from older data must not be handed back.
if rolled_back() then
  start_grace(grace_key, grace_ms)
  return {ROLLED_BACK, false, grace_ms}
end

-- A cluster is led by one leadership or by per-component leases, never both.
local ls = redis.call('HMGET', ls_key, F_LIVE, F_TOKEN)
if ls[1] == LIVE_YES then return {LEADERSHIP_HELD, false, 0} end

local holder = redis.call('GET', lease_key)
local h = read_leader(leader_key)
local changes = {}

if holder then
  if holder == h[SESSION] and h[CONTENDER] == contender_id and h[LIVE] == LIVE_YES
    and owner_ok(redis.call('HGET', leader_key, F_OWNER), owner) then
    local notices = {}
    set_ttl(lease_key, component, h[SESSION], ttl, notices)
    publish_ttls(notices)
    if h[TTL] ~= ttl then redis.call('HSET', leader_key, F_TTL, ttl) end
    if address ~= '' and address ~= h[ADDRESS] then
      redis.call('HSET', leader_key, F_ADDRESS, address)
      h[ADDRESS] = address
      changes[1] = emit('confirmed', component, leader_json(h), tonumber(ttl))
    end
    return {ALREADY_HELD, leader_json(h), tonumber(ttl), unpack(changes)}
  end
  return {HELD, holder_json(holder, h), redis.call('PTTL', lease_key)}
end

local grace_left = redis.call('PTTL', grace_key)
if grace_left > 0 then return {IN_GRACE, false, grace_left} end

settle_expired(leader_key, h, component, changes, components_key)
-- Consul's lock-delay, set by the settling of an expiry (here or earlier): never by a
-- resignation or a revocation.
local delay_left = (tonumber(redis.call('HGET', leader_key, F_DELAYED_UNTIL)) or 0) - math.floor(now_us() / 1000)
if delay_left > 0 then return {LOCK_DELAY, false, delay_left, unpack(changes)} end
local refused = quota_job_manager(components_key, component, job_managers)
if refused then return refused end

-- Above every token of the cluster: its index (the floor of ended leases, whose hashes
-- are gone) and the last leadership's token.
local base = token_base(h[TOKEN])
if (tonumber(ls[2]) or 0) > base then base = tonumber(ls[2]) end
local tok = int(next_value(base, token_floor))
local at = int(math.floor(now_us() / 1000))
redis.call('SET', lease_key, session_id, 'PX', ttl, 'NX')
redis.call('HSET', leader_key, F_CONTENDER, contender_id, F_SESSION, session_id, F_TOKEN, tok,
  F_ADDRESS, address, F_ACQUIRED, at, F_LIVE, LIVE_YES, F_TTL, ttl, F_LOCK_DELAY, lock_delay, F_DELAYED_UNTIL, '0', F_OWNER, owner)
-- A hash kept for a lock delay (or a sync's tombstone) had a TTL: a live one has none.
redis.call('PERSIST', leader_key)
redis.call('SADD', components_key, component)
local leader = leader_json({contender_id, session_id, tok, address, at})
changes[#changes + 1] = emit('granted', component, leader, tonumber(ttl), tonumber(tok))
return {DONE, with_gap(leader), tonumber(ttl), unpack(changes)}
