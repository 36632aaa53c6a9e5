-- Shared by every script that changes leadership (pasted in by the loader).
--
-- Every such script takes the same first keys and arguments, bound here:
--   KEYS[1] index_key: the cluster's change index
--   KEYS[2] log_key: the cluster's change log (a stream)
--   ARGV[1] channel: the cluster's pub/sub channel
--   ARGV[2] index_floor: the highest index the calling server has seen
--   ARGV[3] log_size: how many changes the log keeps, optionally followed by the history's
--           retention: '<log size> <history entries> <history ms>' (lib/history.lua)
-- @include "lib/codes.lua"
-- @include "lib/leader_hash.lua"
-- @include "lib/published.lua"
-- @include "lib/pubsub.lua"

local index_key, log_key = KEYS[1], KEYS[2]
local channel, index_floor, log_size = ARGV[1], tonumber(ARGV[2]), ARGV[3]

-- Redis's own clock in microseconds: the floor of every index and token, so that both
-- keep growing even when Redis lost the counters (restart without persistence, failover
-- to a replica that lagged).
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Integers up to 2^53 as digits; tostring() would print them in exponent form.
local function int(n)
  return string.format('%.0f', n)
end

-- @include "lib/history.lua"

-- The next value of a counter that never goes backwards: above what is stored, above
-- what the caller has seen, and at least Redis's clock.
local function next_value(stored, floor)
  local v = now_us()
  local s = (tonumber(stored) or 0) + 1
  if s > v then v = s end
  if floor + 1 > v then v = floor + 1 end
  return v
end

-- A cluster that has no data has no index: a read answers one derived from Redis's clock
-- (sync.lua, unborn_index) and stores nothing, so that reads create no state (issue 16).
-- The first write stores one, above every index a read answered (the clock, or the
-- caller's floor), and tells every server on BORN_CHANNEL, where the views of clusters that
-- had no data (which subscribe to no channel of their own) hear of it (views.ts).
--
-- Stored indexes are even and derived ones odd: an odd index tells changes.lua that the
-- cluster had no data then, so that a watcher resuming from it is replayed the log from the
-- cluster's first change (its `p` is 0) rather than sent a snapshot.
local BORN_CHANNEL = 'lh:born'

local function next_index(stored, floor)
  local v = next_value(stored, floor)
  if v % 2 == 1 then v = v + 1 end
  return v
end

-- The index answered for a cluster without one: odd, not above Redis's clock less one (so
-- that the first write's index, at least the clock then, is above it), and above the floor.
local function unborn_index(floor)
  local v = now_us() - 1
  if floor + 1 > v then v = floor + 1 end
  if v % 2 == 0 then v = v + 1 end
  return v
end

local function store_index(idx, prev)
  redis.call('SET', index_key, idx)
  if not prev then redis.call('PUBLISH', BORN_CHANNEL, channel) end
end

-- The leader hash's fields, in the order of the positions CONTENDER .. PUBLISHED_AT
-- (lib/leader_hash.lua).
local function read_leader(key)
  return redis.call('HMGET', key, F_CONTENDER, F_SESSION, F_TOKEN, F_ADDRESS, F_ACQUIRED, F_LIVE, F_TTL, F_PUBLISHED)
end

-- A leader as JSON (changes.ts decodes it), from fields by position as read_leader gives
-- them. Session ids need no escaping; the token and acquired-at are digits.
local function leader_json(h)
  local addr = 'null'
  if h[ADDRESS] and h[ADDRESS] ~= '' then addr = cjson.encode(h[ADDRESS]) end
  return '{"cid":' .. cjson.encode(h[CONTENDER]) .. ',"sid":"' .. h[SESSION] .. '","tok":' .. h[TOKEN]
    .. ',"addr":' .. addr .. ',"at":' .. h[ACQUIRED] .. '}'
end

-- Records one change: bumps the index, appends to the capped log and publishes, all in
-- the calling script. Returns the payload, which the script also answers to its caller.
-- A grant passes its token as `at_least`: the index then stays at or above every token
-- granted in the cluster, so that it is the cluster's token floor once a lease's leader
-- hash is gone (forget_leader).
--
-- The change goes into the leadership history too (lib/history.lua): a grant opens an entry,
-- a confirmation sets its address, an expiry or revocation closes it, as `how` says (a
-- revocation is 'revoked' unless the caller says 'resigned').
local function emit(event, component, leader, ttl, at_least, how)
  if event == 'granted' then
    history_grant(component, leader)
  elseif event == 'confirmed' then
    history_address(component, cjson.decode(leader).addr)
  else
    history_end(component, how or event)
  end
  local prev = redis.call('GET', index_key)
  local v = next_index(prev, index_floor)
  if at_least and at_least > v then v = at_least + at_least % 2 end
  local idx = int(v)
  local p = int(tonumber(prev) or 0)
  local payload = '{"i":' .. idx .. ',"p":' .. p .. ',"e":"' .. event .. '","c":"' .. component
    .. '","l":' .. (leader or 'null') .. ',"r":' .. int(ttl) .. '}'
  store_index(idx, prev)
  redis.call('XADD', log_key, 'MAXLEN', (retention()), idx .. '-0', 'p', p, 'd', payload)
  redis.call(CHANGES_PUBLISH, channel, payload)
  return payload
end

-- Whether Redis lost changes the calling server has seen: its stored index is below the
-- highest one the server knows, which only a Redis that went back in time can show (a
-- failover to a replica that lagged, a restored backup). A missing index says nothing: a
-- deleted cluster has none, and a Redis that lost everything is caught by the marker key.
local function rolled_back()
  local stored = redis.call('GET', index_key)
  return stored ~= false and tonumber(stored) < index_floor
end

-- After a rollback no lease is granted until every lease that may have been granted (and
-- acknowledged) in the lost data has run out: Chubby's grace period after a master
-- failover. `grace_ms` is the longest TTL the calling server knows was granted.
local function start_grace(grace_key, grace_ms)
  if grace_ms > 0 and redis.call('PTTL', grace_key) < grace_ms then
    redis.call('SET', grace_key, '1', 'PX', grace_ms)
  end
end

-- The highest token granted in the cluster so far, as far as `tok` (a leader hash's) and
-- the index tell: every grant raised the index to its token (emit's at_least), so an
-- ended lease needs no key of its own to keep its component's tokens growing.
local function token_base(tok)
  local stored, idx = tonumber(tok) or 0, tonumber(redis.call('GET', index_key)) or 0
  if idx > stored then return idx end
  return stored
end

-- A lease that ended leaves nothing of its component behind (issue 16): its leader hash
-- goes, and so does its member of the cluster's components (`components_key`; a script
-- that does not declare that key passes nil, and the next sync or leadership campaign
-- drops the member, whose hash is gone). The token floor lives on in the index.
local function forget_leader(leader_key, component, components_key)
  redis.call('DEL', leader_key)
  if components_key then redis.call('SREM', components_key, component) end
end

-- A lease whose key is gone while its hash still says live has run out: record that. A
-- component published under a leadership is left to the end of the leadership, which
-- settles all its components in one script (lib/cluster_leadership.lua). A grant with a lock
-- delay (Consul's) keeps the component from anyone for that long after its expiry,
-- counted from now, when the expiry is recorded (campaign.lua enforces it): only then is
-- the hash kept, and only for as long as the delay (it expires with it); otherwise the
-- expiry forgets the component (forget_leader).
local function settle_expired(hkey, h, component, changes, components_key)
  if h[LIVE] == LIVE_YES and h[PUBLISHED_AT] ~= '1' then
    local delay = tonumber(redis.call('HGET', hkey, F_LOCK_DELAY)) or 0
    if delay > 0 then
      redis.call('HSET', hkey, F_LIVE, '0', F_DELAYED_UNTIL, int(math.floor(now_us() / 1000) + delay))
      redis.call('PEXPIRE', hkey, delay)
      if components_key then redis.call('SREM', components_key, component) end
    else
      forget_leader(hkey, component, components_key)
    end
    changes[#changes + 1] = emit('expired', component, nil, 0)
  end
end

-- The current holder as JSON, or false when the lease is free.
local function holder_json(holder, h)
  if holder and holder == h[SESSION] and h[LIVE] == LIVE_YES then return leader_json(h) end
  return false
end

-- Whether the caller may act on a lease or leadership: `owner` is the name of its access
-- token ('' when the server runs open), `stored` the one that campaigned (F_OWNER). A lease
-- granted by a server from before owners were kept has none (false): any caller, and
-- renew.lua records the first renewer's.
local function owner_ok(stored, owner)
  return stored == owner or not stored
end

-- HELD when the lease key is set, else FREE: what a caller that does not hold it learns.
local function not_held(holder)
  if holder then return HELD end
  return FREE
end

-- Sets a live lease's TTL (renew, or a holder's campaign). Every server times the leases
-- it knows and shows their time left, so the new TTLs are published to them: noted here,
-- then sent by publish_ttls in one message (without an index: they are not changes of
-- leadership). Components and session ids need no JSON escaping.
local function set_ttl(lease_key, component, session, ttl, notices)
  redis.call('PEXPIRE', lease_key, ttl)
  notices[#notices + 1] = '["' .. component .. '","' .. session .. '",' .. ttl .. ']'
end

-- A message of new TTLs is framed, not JSON: 'ttls', the origin, then the notices as a
-- JSON array, separated by single spaces (changes.ts decodes it). The origin names the
-- server that made the renewals, which timed them already and skips the message by that
-- field; '' for none. An origin has no spaces (LeaseStore checks it).
local function publish_ttls(notices, origin)
  if #notices == 0 then return end
  redis.call(CHANGES_PUBLISH, channel, 'ttls ' .. (origin or '') .. ' [' .. table.concat(notices, ',') .. ']')
end
