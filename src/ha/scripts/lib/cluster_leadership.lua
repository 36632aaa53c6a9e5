-- Shared by the scripts of a cluster's leadership (pasted in by the loader): one lease
-- for a contender, one session id and one fencing token, under which it publishes the
-- leader information of any number of components (docs/design.md §3).
--
-- Beyond lib/leadership.lua's first keys and arguments, every such script takes:
--   KEYS[3] ls_lease_key: the leadership's lease (its session id, with a TTL)
--   KEYS[4] ls_key: the leadership hash (lib/leader_hash.lua's fields)
--   KEYS[5] published_key: component -> address of each component published under it
-- and, where a script says so, a list of components as the caller read them: their lease
-- and leader hash as the last pairs of KEYS before the history's three (lib/history.lua),
-- their names as the last ARGV.
--
-- A published component has a lease and a leader hash like any other (so that readers,
-- watchers and the sync see no difference), marked F_PUBLISHED, holding the leadership's
-- contender, session and token, its lease set to run out with the leadership's.
-- @include "lib/leadership.lua"

local ls_lease_key, ls_key, published_key = KEYS[3], KEYS[4], KEYS[5]
local LS_OWNER = 8

-- The components the caller listed, {component, lease_key, leader_key} each, their keys
-- from KEYS[first_key] on.
local function listed_from(first_key)
  local n = (#KEYS - 3 - first_key + 1) / 2
  local out = {}
  for i = 1, n do
    out[i] = {ARGV[#ARGV - n + i], KEYS[first_key + 2 * i - 2], KEYS[first_key + 2 * i - 1]}
  end
  return out
end

-- Whether `list` names exactly the members of the set or hash at `key` (`card` and
-- `member` are the commands that count and test them).
local function names_exactly(list, key, card, member)
  if redis.call(card, key) ~= #list then return false end
  for _, c in ipairs(list) do
    if redis.call(member, key, c[1]) == 0 then return false end
  end
  return true
end

-- The leadership hash, by the positions of read_leader, F_OWNER at LS_OWNER.
local function read_leadership()
  return redis.call('HMGET', ls_key, F_CONTENDER, F_SESSION, F_TOKEN, F_ADDRESS, F_ACQUIRED, F_LIVE, F_TTL, F_OWNER)
end

-- Whether `session` holds the leadership now.
local function holds(holder, ls, session)
  return holder and holder == session and ls[SESSION] == session and ls[LIVE] == LIVE_YES
end

-- Ends the leadership: every live component published under it becomes leaderless, each
-- with a change of its own (`event`), in the order of `list`, in this one script, and is
-- forgotten (forget_leader; `components_key` may be nil). The leadership's own hash stays:
-- one per cluster, its token a floor of the next. The history records each end, and the
-- leadership's, as `how` (lib/history.lua; by default the event).
local function end_leadership(list, ls, event, components_key, how)
  local changes = {}
  for _, c in ipairs(list) do
    local h = redis.call('HMGET', c[3], F_SESSION, F_LIVE, F_PUBLISHED)
    if h[1] == ls[SESSION] and h[2] == LIVE_YES and h[3] == '1' then
      redis.call('DEL', c[2])
      forget_leader(c[3], c[1], components_key)
      changes[#changes + 1] = emit(event, c[1], nil, 0, nil, how)
    end
  end
  redis.call('DEL', ls_lease_key, published_key)
  redis.call('HSET', ls_key, F_LIVE, '0')
  history_end(LEADERSHIP, how or event)
  return changes
end

-- A leadership that ran out unnoticed (its lease gone, its hash still live) is ended here,
-- its components 'expired'. Answers the changes, or false when `list` is not what is
-- published (the caller answers CHANGED).
local function settle_ended(holder, ls, list, components_key)
  if holder or ls[LIVE] ~= LIVE_YES then return {} end
  if not names_exactly(list, published_key, 'HLEN', 'HEXISTS') then return false end
  return end_leadership(list, ls, 'expired', components_key)
end

-- Every script's reply: {code, leader json or false, lease ms left, ttl, how many change
-- payloads follow, the payloads, then what the script adds (`extra`, flat)}.
local function reply(code, lj, left, ttl, changes, extra)
  local out = {code, lj, left, tonumber(ttl) or 0, #changes}
  for _, c in ipairs(changes) do out[#out + 1] = c end
  for _, x in ipairs(extra or {}) do out[#out + 1] = x end
  return out
end

-- The holder's reply to a caller that does not hold the leadership: HELD with the holder
-- and what it published, or FREE.
local function not_held_reply(holder, ls, changes)
  if holder then
    return reply(HELD, holder_json(holder, ls), redis.call('PTTL', ls_lease_key), ls[TTL], changes,
      redis.call('HGETALL', published_key))
  end
  return reply(FREE, false, 0, 0, changes)
end

-- The check of a renewal and a resignation: nothing when `contender_id` and `session_id`
-- hold the leadership, it was campaigned for with the caller's token (`owner`; an admin's
-- resignation, `force`, skips that) and `list` names what is published; else the reply
-- to answer (a leadership that ran out is ended here).
local function refusal(holder, ls, list, contender_id, session_id, owner, force)
  if holds(holder, ls, session_id) and ls[CONTENDER] == contender_id then
    if not force and not owner_ok(ls[LS_OWNER], owner) then return reply(NOT_OWNER, false, 0, 0, {}) end
    if not names_exactly(list, published_key, 'HLEN', 'HEXISTS') then return {CHANGED} end
    return nil
  end
  local changes = settle_ended(holder, ls, list)
  if not changes then return {CHANGED} end
  return not_held_reply(holder, ls, changes)
end
