-- The quotas of a cluster (docs/operations.md, Quotas; docs/decisions.md): each is checked
-- inside the script that would pass it, so that concurrent writers cannot overshoot, and
-- in O(1) (or O(log n)): ZCARD of a sorted set, a counter, ZCOUNT of a sorted set.
--
-- Each check answers nil when the write may go on, else the refusal to return:
-- {QUOTA_EXCEEDED, quota name, limit[, ms until one frees up]}. Names are those of
-- docs/operations.md: jobResults, executionPlans, blobs, blobBytes, idempotencyRecords,
-- jobManagers.
-- The blobs' usage lives in a hash of the cluster (ClusterKeys.usage): blobs, blobBytes.
-- @include "lib/codes.lua"

local function over_quota(name, limit, retry_ms)
  return {QUOTA_EXCEEDED, name, tostring(limit), retry_ms and tostring(retry_ms) or nil}
end

-- A new member of a sorted set of the cluster's job ids (job results, plans): refused once
-- it holds `limit`; a member it holds already is no new one (a replaced plan, say).
local function quota_member(ids_key, member, name, limit)
  if redis.call('ZCARD', ids_key) >= limit and not redis.call('ZSCORE', ids_key, member) then
    return over_quota(name, limit)
  end
end

-- A blob of `size` bytes replacing `old_meta` (its metadata JSON, or nil for a new key):
-- refused past the count or the bytes; else counted now, since nothing refuses it after.
-- A replacement adds no blob, and only the bytes it adds (a smaller one is never refused).
local function quota_blob(usage_key, old_meta, size, limits)
  local old_size = old_meta and cjson.decode(old_meta).n or 0
  local usage = redis.call('HMGET', usage_key, 'blobs', 'blobBytes')
  local blobs, bytes = tonumber(usage[1] or 0), tonumber(usage[2] or 0)
  if not old_meta and blobs >= limits.blobs then return over_quota('blobs', limits.blobs) end
  local grown = tonumber(size) - old_size
  if grown > 0 and bytes + grown > limits.blobBytes then return over_quota('blobBytes', limits.blobBytes) end
  if not old_meta then redis.call('HINCRBY', usage_key, 'blobs', 1) end
  if grown ~= 0 then redis.call('HINCRBY', usage_key, 'blobBytes', grown) end
end

-- Frees the quota of deleted blobs, given their metadata JSON; the last one takes the usage
-- with it, so that a cluster without blobs keeps no key for them.
local function quota_release_blobs(usage_key, metas)
  if #metas == 0 then return end
  if redis.call('HINCRBY', usage_key, 'blobs', -#metas) <= 0 then
    redis.call('DEL', usage_key)
    return
  end
  local bytes = 0
  for _, m in ipairs(metas) do bytes = bytes + cjson.decode(m).n end
  redis.call('HINCRBY', usage_key, 'blobBytes', -bytes)
end

-- Idempotency records live in index_key too (a sorted set scored by when each expires), so
-- that the live ones are counted without a scan: ZCARD less the expired, which each write
-- prunes a few of at a time. Refused with the time until the first one expires.
local function quota_idempotency(index_key, now, limit)
  local expired = redis.call('ZRANGEBYSCORE', index_key, '-inf', now, 'LIMIT', 0, 100)
  if #expired > 0 then redis.call('ZREM', index_key, unpack(expired)) end
  if redis.call('ZCARD', index_key) - redis.call('ZCOUNT', index_key, '-inf', now) < limit then return nil end
  local first = redis.call('ZRANGEBYSCORE', index_key, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  return over_quota('idempotencyRecords', limit, math.max(1, tonumber(first[2]) - now))
end

-- A job manager new to the cluster (a campaign, or a publish under a leadership, for one
-- its components set does not name): refused once the cluster has `limit` of them, so that
-- GET leaders and a watch's snapshot stay bounded. The set also names the singletons (at
-- most 3, counted off with SISMEMBER): the check stays O(1).
local SINGLETONS = {'resourcemanager', 'dispatcher', 'rest'}
local function quota_job_manager(components_key, component, limit)
  if string.sub(component, 1, 11) ~= 'jobmanager/' or redis.call('SISMEMBER', components_key, component) == 1 then return nil end
  local n = redis.call('SCARD', components_key)
  if n < limit then return nil end
  for _, s in ipairs(SINGLETONS) do n = n - redis.call('SISMEMBER', components_key, s) end
  if n >= limit then return over_quota('jobManagers', limit) end
end
