-- Fencing (pasted in by the loader).
-- @include "lib/leader_hash.lua"

-- Whether `token` is the fencing token of the cluster's live leadership, if it has one,
-- else of a live lease: the lease key holds the session of the leader hash, the hash says
-- live, and its token is `token`. 'override' (an admin's deliberate unfenced write)
-- passes. The leadership's keys share the lease key's prefix (lib/cluster_leadership.lua).
local function fence_holds(lease_key, leader_key, token)
  if token == 'override' then return true end
  -- While a cluster leadership lives, its token fences every write of the cluster,
  -- published component or not (docs/design.md §3a).
  local p = string.match(lease_key, '^(lh:%b{}:)')
  local leadership = redis.call('GET', p .. 'leadership')
  if leadership then
    local l = redis.call('HMGET', p .. 'leadership:h', F_SESSION, F_TOKEN)
    return l[1] == leadership and l[2] == token
  end
  local sid = redis.call('GET', lease_key)
  if not sid then return false end
  local h = redis.call('HMGET', leader_key, F_SESSION, F_TOKEN, F_LIVE)
  local session, tok, live = h[1], h[2], h[3]
  return session == sid and live == LIVE_YES and tok == token
end
