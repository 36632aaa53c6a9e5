-- Fencing (pasted in by the loader).
-- @include "lib/leader_hash.lua"

-- Whether `token` is the fencing token of a live lease: the lease key holds the session
-- of the leader hash, the hash says live, and its token is `token`. 'override' (an
-- admin's deliberate unfenced write) passes.
local function fence_holds(lease_key, leader_key, token)
  if token == 'override' then return true end
  local sid = redis.call('GET', lease_key)
  if not sid then return false end
  local h = redis.call('HMGET', leader_key, F_SESSION, F_TOKEN, F_LIVE)
  local session, tok, live = h[1], h[2], h[3]
  return session == sid and live == LIVE_YES and tok == token
end
