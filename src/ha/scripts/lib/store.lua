-- Shared by every store write (pasted in by the loader).
--
-- Every store write takes the same first keys and arguments, bound here:
--   KEYS[1] lease_key: the lease of the component whose leader owns the data
--   KEYS[2] leader_key: that component's leader hash
--   KEYS[3] idempotency_key: the idempotency record (unused when fingerprint is '')
--   and, last of all KEYS: the cluster's idempotency index and usage (lib/quota.lua), then
--   its leadership lease and hash (lib/fence.lua), whose token fences every write of the
--   cluster while a leadership lives
--   ARGV[1] fence_token: the fencing token, or 'override'
--   ARGV[2] fingerprint: the request's fingerprint, '' when it has no Idempotency-Key
--   ARGV[3] remember_ms: how long an answer is remembered (ms)
--   ARGV[4] token_floor: the highest token the calling server knows granted to that
--           component; a lower fence_token was superseded, even if Redis (rolled back)
--           holds its lease as live
--   and, last of all ARGV, the cluster's quotas (JSON: name -> limit, lib/quota.lua),
--   taken off ARGV here so that each script's own ARGV read as its header says
-- and answers {replayed, code, values...}: replayed is 1 for a remembered answer; every
-- store write may answer DONE, FENCE_STALE, IDEMPOTENCY_KEY_REUSED and QUOTA_EXCEEDED (for
-- idempotency records), and each adds its own codes. Values are strings, so that no number
-- loses digits on its way through cjson.
-- @include "lib/codes.lua"
-- @include "lib/fence.lua"
-- @include "lib/quota.lua"

local lease_key, leader_key, idempotency_key = KEYS[1], KEYS[2], KEYS[3]
local idempotency_index_key, usage_key = KEYS[#KEYS - 3], KEYS[#KEYS - 2]
local ls_lease_key, ls_key = KEYS[#KEYS - 1], KEYS[#KEYS]
local fence_token, fingerprint, remember_ms, token_floor = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local limits = cjson.decode(table.remove(ARGV))

-- Redis's clock in milliseconds, as digits.
local function now_ms()
  local t = redis.call('TIME')
  return t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
end

-- A digest of an answer {code, name, value, ...} that does not depend on the order of its
-- pairs (a hash's fields come back in any order).
local function answer_digest(answer)
  local pairs_ = {}
  for i = 2, #answer, 2 do pairs_[#pairs_ + 1] = answer[i] .. '\0' .. (answer[i + 1] or '') end
  table.sort(pairs_)
  return redis.sha1hex(answer[1] .. '\0' .. table.concat(pairs_, '\0'))
end

-- Runs `write` (which answers {code, values...}) if the fence holds, and remembers a
-- successful answer under the idempotency key so that a retry gets it again. With
-- `replay`, the answer is not copied (a job result's may be megabytes): the record keeps its
-- digest, and a retry gets replay(digest), which reads the data again and answers it, or
-- ANSWER_GONE when it no longer has that digest.
local function fenced_write(write, replay)
  if fingerprint ~= '' then
    local saved = redis.call('GET', idempotency_key)
    if saved then
      local s = cjson.decode(saved)
      if s.f ~= fingerprint then return {0, IDEMPOTENCY_KEY_REUSED} end
      local answer = s.a or replay(s.d)
      return {answer[1] == DONE and 1 or 0, unpack(answer)}
    end
  end
  if not fence_holds(lease_key, leader_key, fence_token, ls_lease_key, ls_key, token_floor) then return {0, FENCE_STALE} end
  local now
  if fingerprint ~= '' then
    now = tonumber(now_ms())
    local refused = quota_idempotency(idempotency_index_key, now, limits.idempotencyRecords)
    if refused then return {0, unpack(refused)} end
  end
  local answer = write()
  if answer[1] == DONE and fingerprint ~= '' then
    local record = replay and {f = fingerprint, d = answer_digest(answer)} or {f = fingerprint, a = answer}
    redis.call('SET', idempotency_key, cjson.encode(record), 'PX', remember_ms)
    redis.call('ZADD', idempotency_index_key, now + tonumber(remember_ms), idempotency_key)
  end
  return {0, unpack(answer)}
end
