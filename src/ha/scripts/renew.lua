--[[
  Extends leases of one cluster, each only if its contender and session still hold it
  (compare-and-set). Renewals that arrive together go in one call.

  KEYS[1] index  KEYS[2] log
  KEYS[2i+1] lease, KEYS[2i+2] leader hash of the i-th renewal
  ARGV[1..3] channel, index floor, log size  (see lib/leadership.lua)
  ARGV[5i-1..5i+3] component, contenderId, session id, ttl in ms ('' to keep the lease's
    own), and the ttl for a lease that has none recorded, of the i-th renewal

  Returns, for each renewal in turn: code, leader json or false, lease ms left, how many
  change payloads follow, the payloads
    code 1 renewed   0 not the holder (the leader returned is the current one)
]]
-- @include "lib/leadership.lua"

local out, notices = {}, {}
for i = 1, (#KEYS - 2) / 2 do
  local lease, hkey = KEYS[2 * i + 1], KEYS[2 * i + 2]
  local a = 5 * i - 1
  local component, cid, sid, ttl = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local holder = redis.call('GET', lease)
  local h = read_leader(hkey)
  if holder and holder == sid and h[2] == sid and h[1] == cid then
    if ttl == '' then
      ttl = h[7] or ARGV[a + 4]
    elseif ttl ~= h[7] then
      redis.call('HSET', hkey, 'ttl', ttl)
    end
    set_ttl(lease, component, sid, ttl, notices)
    out[#out + 1] = 1
    out[#out + 1] = leader_json(h)
    out[#out + 1] = tonumber(ttl)
    out[#out + 1] = 0
  else
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
publish_ttls(notices)
return out
