#!lua flags=allow-oom
--[[
  Extends leases of one cluster, each only if its contender and session still hold it
  (compare-and-set). Renewals that arrive together go in one call.

  KEYS  1 index  2 log  (lib/leadership.lua)
        2i + 1, 2i + 2 the lease and the leader hash of the i-th renewal
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 origin: the caller's name, a field of the message of new TTLs, so that it can
          skip its own
        7i - 2 .. 7i + 4 of the i-th renewal: component, contender id, session id, ttl in ms
          ('' to keep the lease's own), fallback ttl (for a lease that has none recorded),
          known: what the caller knows of the leader, '' nothing, else 'a' followed by
          its address, and owner: the name of the caller's access token ('' when the
          server runs open)

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  Returns, for each renewal in turn, a code and what that code says follows:
  Codes:
    DONE (0)                     renewed; the leader is the one the caller knows. Follow:
                                 lease ms left, ms that were left before the renewal (the
                                 hot path, kept short: each element costs the decoder)
    RENEWED_NEW_LEADER (4)       renewed; the leader is not what the caller knows. Follow:
                                 leader json, lease ms left, ms left before the renewal
    HELD (1)                     held by another contender or session
    FREE (2)                     not held by anyone. After HELD and FREE follow: leader
                                 json or false, lease ms left, how many change payloads
                                 follow, the payloads
    NOT_LEASE_OWNER (12)         held by this contender and session, campaigned for with
                                 another access token: nothing changed, nothing follows
]]
-- @include "lib/leadership.lua"

local origin = ARGV[4]

local out, notices = {}, {}
for i = 1, (#KEYS - 5) / 2 do
  local lease_key, leader_key = KEYS[2 * i + 1], KEYS[2 * i + 2]
  local a = 7 * i - 2
  local component, contender_id, session_id = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local ttl, fallback_ttl, known, owner = ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]
  local holder = redis.call('GET', lease_key)
  -- The hot path reads only what it compares.
  local h = redis.call('HMGET', leader_key, F_CONTENDER, F_SESSION, F_TTL, F_ADDRESS, F_OWNER)
  local h_contender, h_session, h_ttl, h_address, h_owner = h[1], h[2], h[3], h[4], h[5]
  local held = holder and holder == session_id and h_session == session_id and h_contender == contender_id
  if held and not owner_ok(h_owner, owner) then
    out[#out + 1] = NOT_LEASE_OWNER
  elseif held then
    if not h_owner then redis.call('HSET', leader_key, F_OWNER, owner) end
    if ttl == '' then
      ttl = h_ttl or fallback_ttl
    elseif ttl ~= h_ttl then
      redis.call('HSET', leader_key, F_TTL, ttl)
    end
    -- What was left of the lease when the renewal came: the slack (metrics), read in the
    -- same call, before the extension.
    local slack = redis.call('PTTL', lease_key)
    set_ttl(lease_key, component, session_id, ttl, notices)
    if known == 'a' .. (h_address or '') then
      out[#out + 1] = DONE
    else
      out[#out + 1] = RENEWED_NEW_LEADER
      out[#out + 1] = leader_json(read_leader(leader_key))
    end
    out[#out + 1] = tonumber(ttl)
    out[#out + 1] = slack
  else
    h = read_leader(leader_key)
    local changes = {}
    if not holder then settle_expired(leader_key, h, component, changes) end
    local pttl = 0
    if holder then pttl = redis.call('PTTL', lease_key) end
    out[#out + 1] = not_held(holder)
    out[#out + 1] = holder_json(holder, h)
    out[#out + 1] = pttl
    out[#out + 1] = #changes
    for _, c in ipairs(changes) do out[#out + 1] = c end
  end
end
publish_ttls(notices, origin)
return out
