-- Shared by every store write (pasted in by the loader).
--
-- Every store write takes the same first keys and arguments, bound here:
--   KEYS[1] lease_key: the lease of the component whose leader owns the data
--   KEYS[2] leader_key: that component's leader hash
--   KEYS[3] idempotency_key: the idempotency record (unused when fingerprint is '')
--   and, last of all KEYS, the cluster's leadership lease and hash (lib/fence.lua), whose
--   token fences every write of the cluster while a leadership lives
--   ARGV[1] fence_token: the fencing token, or 'override'
--   ARGV[2] fingerprint: the request's fingerprint, '' when it has no Idempotency-Key
--   ARGV[3] remember_ms: how long an answer is remembered (ms)
-- and answers {replayed, code, values...}: replayed is 1 for a remembered answer; every
-- store write may answer DONE, FENCE_STALE and IDEMPOTENCY_KEY_REUSED, and each adds its
-- own codes. Values are strings, so that no number loses digits on its way through cjson.
-- @include "lib/codes.lua"
-- @include "lib/fence.lua"

local lease_key, leader_key, idempotency_key = KEYS[1], KEYS[2], KEYS[3]
local ls_lease_key, ls_key = KEYS[#KEYS - 1], KEYS[#KEYS]
local fence_token, fingerprint, remember_ms = ARGV[1], ARGV[2], ARGV[3]

-- Runs `write` (which answers {code, values...}) if the fence holds, and remembers a
-- successful answer under the idempotency key so that a retry gets it again.
local function fenced_write(write)
  if fingerprint ~= '' then
    local saved = redis.call('GET', idempotency_key)
    if saved then
      local s = cjson.decode(saved)
      if s.f ~= fingerprint then return {0, IDEMPOTENCY_KEY_REUSED} end
      return {1, unpack(s.a)}
    end
  end
  if not fence_holds(lease_key, leader_key, fence_token, ls_lease_key, ls_key) then return {0, FENCE_STALE} end
  local answer = write()
  if answer[1] == DONE and fingerprint ~= '' then
    redis.call('SET', idempotency_key, cjson.encode({f = fingerprint, a = answer}), 'PX', remember_ms)
  end
  return {0, unpack(answer)}
end

-- Redis's clock in milliseconds, as digits.
local function now_ms()
  local t = redis.call('TIME')
  return t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
end
