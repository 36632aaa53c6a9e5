-- Shared by every script that changes leadership (pasted in by the loader).
--
-- Every script takes the same first keys and arguments:
--   KEYS[1] the cluster's change index   KEYS[2] the cluster's change log (a stream)
--   ARGV[1] the cluster's pub/sub channel
--   ARGV[2] index floor: the highest index the calling server has seen
--   ARGV[3] how many changes the log keeps

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

-- The next value of a counter that never goes backwards: above what is stored, above
-- what the caller has seen, and at least Redis's clock.
local function next_value(stored, floor)
  local v = now_us()
  local s = (tonumber(stored) or 0) + 1
  if s > v then v = s end
  if floor + 1 > v then v = floor + 1 end
  return v
end

-- The leader hash of a component: contender, session, token, address, acquired-at (ms),
-- whether its lease is live, and the lease's TTL (ms; what a renewal without one keeps).
-- The lease itself is a separate string key with a TTL.
local function read_leader(key)
  return redis.call('HMGET', key, 'cid', 'sid', 'tok', 'addr', 'at', 'live', 'ttl')
end

local function leader_json(h)
  local addr = 'null'
  if h[4] and h[4] ~= '' then addr = cjson.encode(h[4]) end
  return '{"cid":' .. cjson.encode(h[1]) .. ',"sid":"' .. h[2] .. '","tok":' .. h[3]
    .. ',"addr":' .. addr .. ',"at":' .. h[5] .. '}'
end

-- Records one change: bumps the index, appends to the capped log and publishes, all in
-- the calling script. Returns the payload, which the script also answers to its caller.
local function emit(event, component, leader, ttl)
  local prev = redis.call('GET', KEYS[1])
  local idx = int(next_value(prev, tonumber(ARGV[2])))
  local p = int(tonumber(prev) or 0)
  local payload = '{"i":' .. idx .. ',"p":' .. p .. ',"e":"' .. event .. '","c":"' .. component
    .. '","l":' .. (leader or 'null') .. ',"r":' .. int(ttl) .. '}'
  redis.call('SET', KEYS[1], idx)
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], idx .. '-0', 'p', p, 'd', payload)
  redis.call('PUBLISH', ARGV[1], payload)
  return payload
end

-- A lease whose key is gone while its hash still says live has run out: record that.
local function settle_expired(hkey, h, component, changes)
  if h[6] == '1' then
    redis.call('HSET', hkey, 'live', '0')
    changes[#changes + 1] = emit('expired', component, nil, 0)
  end
end

-- The current holder as JSON, or false when the lease is free.
local function holder_json(holder, h)
  if holder and holder == h[2] and h[6] == '1' then return leader_json(h) end
  return false
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
  redis.call('PUBLISH', ARGV[1], 'ttls ' .. (origin or '') .. ' [' .. table.concat(notices, ',') .. ']')
end
