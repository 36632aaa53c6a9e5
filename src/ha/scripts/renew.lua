--[[
  Extends leases of one cluster, each only if its contender and session still hold it
  (compare-and-set). Renewals that arrive together go in one call.

  KEYS[1] index  KEYS[2] log
  KEYS[2i+1] lease, KEYS[2i+2] leader hash of the i-th renewal
  ARGV[1..3] channel, index floor, log size  (see lib/leadership.lua)
  ARGV[4] the caller's name (its origin), a field of the message of new TTLs so that it
    can skip its own
  ARGV[6i-1..6i+4] component, contenderId, session id, ttl in ms ('' to keep the lease's
    own), the ttl for a lease that has none recorded, and what the caller knows of the
    leader: '' nothing, else 'a' followed by its address
  of the i-th renewal

  Returns, for each renewal in turn, a code and what that code says follows:
    1, lease ms left: renewed; the leader is the one the caller knows (the hot path, kept
       short: each element costs the decoder)
    2, leader json, lease ms left: renewed; the leader is not what the caller knows
    0, leader json or false, lease ms left, how many change payloads follow, the payloads:
       not the holder (the leader returned is the current one)
]]
-- @include "lib/leadership.lua"

local out, notices = {}, {}
for i = 1, (#KEYS - 2) / 2 do
  local lease, hkey = KEYS[2 * i + 1], KEYS[2 * i + 2]
  local a = 6 * i - 1
  local component, cid, sid, ttl = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local holder = redis.call('GET', lease)
  -- The hot path reads only what it compares.
  local h = redis.call('HMGET', hkey, 'cid', 'sid', 'ttl', 'addr')
  if holder and holder == sid and h[2] == sid and h[1] == cid then
    if ttl == '' then
      ttl = h[3] or ARGV[a + 4]
    elseif ttl ~= h[3] then
      redis.call('HSET', hkey, 'ttl', ttl)
    end
    set_ttl(lease, component, sid, ttl, notices)
    if ARGV[a + 5] == 'a' .. (h[4] or '') then
      out[#out + 1] = 1
    else
      out[#out + 1] = 2
      out[#out + 1] = leader_json(read_leader(hkey))
    end
    out[#out + 1] = tonumber(ttl)
  else
    h = read_leader(hkey)
    local changes = {}
    if not holder then settle_expired(hkey, h, component, changes) end
    local pttl = 0
    if holder then pttl = redis.call('PTTL', lease) end
    out[#out + 1] = 0
    out[#out + 1] = holder_json(holder, h)
    out[#out + 1] = pttl
    out[#out + 1] = #changes
    for _, c in ipairs(changes) do out[#out + 1] = c end
  end
end
publish_ttls(notices, ARGV[4])
return out
