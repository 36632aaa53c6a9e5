-- Fencing (pasted in by the loader).
-- @include "lib/leader_hash.lua"

-- Whether `token` is the fencing token of a live lease: the lease key holds the session
-- of the leader hash, the hash says live, and its token is `token`. 'override' (an
-- admin's deliberate unfenced write) passes. `floor` is the highest token the calling
-- server knows granted to the component: a token below it was superseded, though a Redis
-- that went back in time may hold its lease as live until a sync ends it.
local function fence_holds(lease_key, leader_key, token, floor)
  if token == 'override' then return true end
  if floor and (tonumber(token) or -1) < tonumber(floor) then return false end
  local sid = redis.call('GET', lease_key)
  if not sid then return false end
  local h = redis.call('HMGET', leader_key, F_SESSION, F_TOKEN, F_LIVE)
  local session, tok, live = h[1], h[2], h[3]
  return session == sid and live == LIVE_YES and tok == token
end
