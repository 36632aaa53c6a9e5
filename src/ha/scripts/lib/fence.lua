-- Fencing (pasted in by the loader).
-- @include "lib/leader_hash.lua"
-- @include "lib/published.lua"

-- Whether `token` fences a write of the cluster now. While a leadership lives (its lease
-- key at ls_lease_key, its hash at ls_key: lib/cluster_leadership.lua), only its token
-- does, whether or not the owning component is published yet. Otherwise it must be the
-- token of the owning component's live lease: the lease key holds the session of the
-- leader hash, the hash says live, and its token is `token`; a component published under
-- a leadership that ended fences nothing. 'override' (an admin's deliberate unfenced
-- write) passes.
local function fence_holds(lease_key, leader_key, token, ls_lease_key, ls_key)
  if token == 'override' then return true end
  local lsid = redis.call('GET', ls_lease_key)
  if lsid then
    local l = redis.call('HMGET', ls_key, F_SESSION, F_TOKEN, F_LIVE)
    return l[1] == lsid and l[3] == LIVE_YES and l[2] == token
  end
  local sid = redis.call('GET', lease_key)
  if not sid then return false end
  local h = redis.call('HMGET', leader_key, F_SESSION, F_TOKEN, F_LIVE, F_PUBLISHED)
  local session, tok, live = h[1], h[2], h[3]
  return session == sid and live == LIVE_YES and tok == token and h[4] ~= '1'
end
