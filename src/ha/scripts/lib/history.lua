-- The cluster's leadership history (docs/design.md §3.3), pasted into lib/leadership.lua,
-- whose emit() writes it: every grant and every end of a component's leader, in the
-- script that makes the change. A cluster's leadership has no change of its own: its
-- scripts call history_grant and history_end with the component LEADERSHIP.
--
-- Three keys, the last three KEYS of every script that writes the history (in this order;
-- ClusterKeys.historyKeys), named as the index is with another last part, so that they share
-- its hash tag and slot:
--   history          a stream, one entry per grant, field c the component: its id (Redis's
--                    clock, ms) orders the history and pages it (history_read.lua)
--   history:entries  a hash: id -> the grant as JSON {c, t: granted at (ms), g: takeover
--                    gap ms or null, l: the leader json of the change}; id..':a' -> the address confirmed
--                    after the grant; id..':e' -> '<ended at ms> <how>'. Kept as strings put
--                    together, never decoded and encoded again (cjson would round tokens).
--   history:state    a hash: component -> the id of its last entry, then ' <ended at ms>'
--                    once it ended: where a grant finds when its component's previous
--                    leader ended (the takeover gap), and an end finds the entry it closes.
--                    A field goes with the entry it names (history_trim), or with its job
--                    (cleanup_job.lua): no field outlives the history.
-- Retention: at most history_max entries, none older than history_age ms (ARGV[3]); each
-- write trims at most HISTORY_TRIM_STEP of the oldest (bounded work per script), and adds
-- at most one, so the history converges to its bounds.

local HISTORY_TRIM_STEP = 4
local LEADERSHIP = 'leadership'
local history_key, history_entries_key, history_state_key = KEYS[#KEYS - 2], KEYS[#KEYS - 1], KEYS[#KEYS]
-- The takeover gap of the grant this script recorded (history_grant), for with_gap.
local granted_gap = false

-- ARGV[3] is the change log's size, or that followed by the history's retention (entries,
-- ms): '1000 10000 2592000000'. Read only by a script that records a change, so that a
-- renewal that records none parses nothing.
local function retention()
  local size, max, age = string.match(log_size, '^(%d+) (%d+) (%d+)$')
  if not size then return log_size, 10000, 2592000000 end
  return size, tonumber(max), tonumber(age)
end

local function now_ms()
  return math.floor(now_us() / 1000)
end

-- A script that writes the history declares its keys (above): one that did not would write
-- into other keys it declared, so it fails before it writes any.
local function history_declared()
  if history_key ~= string.sub(index_key, 1, #index_key - #'index') .. 'history' then
    error('the script writes the leadership history without declaring its keys last')
  end
end

-- Drops the oldest entries past the count or the age, at most HISTORY_TRIM_STEP.
local function history_trim(now, max, age)
  local len = redis.call('XLEN', history_key)
  local old = redis.call('XRANGE', history_key, '-', '+', 'COUNT', HISTORY_TRIM_STEP)
  local n = 0
  for _, e in ipairs(old) do
    local id = e[1]
    if len - n <= max and tonumber(string.match(id, '^%d+')) >= now - age then break end
    n = n + 1
    redis.call('HDEL', history_entries_key, id, id .. ':a', id .. ':e')
    local c = e[2][2]
    local st = redis.call('HGET', history_state_key, c)
    if st == id or (st and string.sub(st, 1, #id + 1) == id .. ' ') then redis.call('HDEL', history_state_key, c) end
  end
  if n > 0 then redis.call('XTRIM', history_key, 'MAXLEN', len - n) end
end

-- A grant of `component` to `leader` (its leader json), now: a new entry, its takeover gap
-- the time since the component's previous leader ended (null when the history does not
-- know one). `granted_at` (ms) is given for a grant recorded after the fact (history_lost.lua):
-- then the gap is not known. Answers the gap, or nil.
local function history_grant(component, leader, granted_at)
  local _, max, age = retention()
  if max == 0 then return nil end
  history_declared()
  local now = now_ms()
  local gap
  local st = redis.call('HGET', history_state_key, component)
  local ended = st and tonumber(string.match(st, ' (%d+)$'))
  if ended and not granted_at then gap = math.max(0, now - ended) end
  granted_gap = gap or false
  local id = redis.call('XADD', history_key, '*', 'c', component)
  local g = 'null'
  if gap then g = int(gap) end
  redis.call('HSET', history_entries_key, id, '{"c":' .. cjson.encode(component) .. ',"t":' .. int(granted_at or now)
    .. ',"g":' .. g .. ',"l":' .. leader .. '}')
  redis.call('HSET', history_state_key, component, id)
  history_trim(now, max, age)
  return gap
end

-- A grant's leader json as its script answers it: with the takeover gap ("g", ms) when
-- the history knows one, which the server that made the grant puts in its metrics
-- (changes.ts, takeoverGapOf). Never in a change payload: watchers see the leader only.
local function with_gap(leader)
  if not granted_gap then return leader end
  return string.sub(leader, 1, -2) .. ',"g":' .. int(granted_gap) .. '}'
end

-- The end of `component`'s leader, `how`: 'resigned', 'expired', 'revoked' or 'lost'.
-- Closes its open entry, if the history has one.
local function history_end(component, how)
  history_declared()
  local st = redis.call('HGET', history_state_key, component)
  if not st or string.find(st, ' ', 1, true) then return end
  local _, max, age = retention()
  local now = now_ms()
  redis.call('HSET', history_entries_key, st .. ':e', int(now) .. ' ' .. how)
  redis.call('HSET', history_state_key, component, st .. ' ' .. int(now))
  history_trim(now, max, age)
end

-- A confirmed address of `component`'s open entry.
local function history_address(component, address)
  if type(address) ~= 'string' then return end
  history_declared()
  local st = redis.call('HGET', history_state_key, component)
  if not st or string.find(st, ' ', 1, true) then return end
  redis.call('HSET', history_entries_key, st .. ':a', address)
end

-- A job's field of the state goes with the job (cleanup_job.lua); its entries age out.
local function history_forget(component)
  history_declared()
  redis.call('HDEL', history_state_key, component)
end
