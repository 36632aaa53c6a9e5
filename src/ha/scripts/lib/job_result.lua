-- A job result write's remembered answer, read again (lib/store.lua's replay, with the
-- digest remembered): the entry as it is, or, for createDirtyResult (as_created), as it
-- was created (dirty, not cleaned), since it may have been cleaned since. ANSWER_GONE when
-- that no longer has the digest: the entry is gone, or is another one.
-- @include "lib/store.lua"

local function job_result_replay(entry_key, digest, as_created)
  local answer = {DONE}
  local flat = redis.call('HGETALL', entry_key)
  for i = 1, #flat, 2 do
    local name, value = flat[i], flat[i + 1]
    if as_created and name == 'state' then value = 'dirty' end
    if not (as_created and name == 'cleanedAt') then
      answer[#answer + 1] = name
      answer[#answer + 1] = value
    end
  end
  if answer_digest(answer) ~= digest then return {ANSWER_GONE} end
  return answer
end
