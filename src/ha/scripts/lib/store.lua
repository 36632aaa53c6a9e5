-- Shared by every store write (pasted in by the loader).
--
-- Every store write takes the same first keys and arguments:
--   KEYS[1] the lease of the component whose leader owns the data  KEYS[2] its leader hash
--   KEYS[3] the idempotency record (unused when ARGV[2] is '')
--   ARGV[1] the fencing token, or 'override'
--   ARGV[2] the request's fingerprint, '' when it has no Idempotency-Key
--   ARGV[3] how long an answer is remembered (ms)
-- and answers {replayed, code, values...}: replayed is 1 for a remembered answer; code 0
-- is done, -1 the fence does not hold, -2 the idempotency key was used for another
-- request; each script adds its own negative codes. Values are strings, so that no number
-- loses digits on its way through cjson.
-- @include "lib/fence.lua"

-- Runs `write` (which answers {code, values...}) if the fence holds, and remembers a
-- successful answer under the idempotency key so that a retry gets it again.
local function fenced_write(write)
  if ARGV[2] ~= '' then
    local saved = redis.call('GET', KEYS[3])
    if saved then
      local s = cjson.decode(saved)
      if s.f ~= ARGV[2] then return {0, -2} end
      return {1, unpack(s.a)}
    end
  end
  if not fence_holds(KEYS[1], KEYS[2], ARGV[1]) then return {0, -1} end
  local answer = write()
  if answer[1] == 0 and ARGV[2] ~= '' then
    redis.call('SET', KEYS[3], cjson.encode({f = ARGV[2], a = answer}), 'PX', ARGV[3])
  end
  return {0, unpack(answer)}
end

-- Redis's clock in milliseconds, as digits.
local function now_ms()
  local t = redis.call('TIME')
  return t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
end
