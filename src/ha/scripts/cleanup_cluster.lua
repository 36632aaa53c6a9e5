#!lua flags=allow-oom
--[[
  cleanupAllData, in bounded steps (issue 16: no script runs for time proportional to a
  tenant's data). The caller (cleanup.ts) runs it with `phase`:
    begin   ends the cluster's leadership (its published components end with the batches)
            and, like every phase but finish, holds the cluster's grace so that no lease
            is granted while the deletion runs: from then on no fenced write lands;
    batch   ends the leases of the components given (pushed as revoked, or expired when
            one had already run out), deletes their keys and members;
    finish  once no component is left, deletes the index, the change log, the leadership
            keys, the history (lib/history.lua), the grace and the tally, and answers the tally.
  What every step (and the caller's deletion of the stores' keys) deleted is added up in
  the tally hash, which lives (tally_ms) until a finish: so a deletion that failed partway
  (a step timed out: 503) and was run again answers what both attempts deleted.

  KEYS  1 index  2 log  (lib/leadership.lua)  3 components_key  4 grace_key
        5 ls_lease  6 ls  7 published  (lib/cluster_leadership.lua)  8 tally_key
        9 + 2i, 10 + 2i the lease and the leader hash of the i-th component (i from 0)
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 phase: 'begin', 'batch' or 'finish'  5 hold_ms: how long the grace holds
        6 tally_ms: how long the tally outlives the last step
        7 + i the i-th component (batch)

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  Returns {code, then the tally (field, count, flat) after finish, or the change payloads
  after begin and batch}
  Codes:
    DONE (0)
    CHANGED (-9)                 finish: components are left; run the batches again
]]
-- @include "lib/leadership.lua"

local components_key, grace_key = KEYS[3], KEYS[4]
local ls_lease_key, ls_key, published_key, tally_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local phase, hold_ms, tally_ms = ARGV[4], ARGV[5], ARGV[6]

if phase == 'finish' then
  if redis.call('SCARD', components_key) > 0 then return {CHANGED} end
  local keys = redis.call('DEL', index_key, log_key, components_key, ls_lease_key, ls_key, published_key)
    + redis.call('UNLINK', history_key, history_entries_key, history_state_key) -- up to HISTORY_MAX_ENTRIES each
  if keys > 0 then redis.call('HINCRBY', tally_key, 'keys', keys) end
  local tally = redis.call('HGETALL', tally_key)
  redis.call('DEL', grace_key, tally_key)
  local out = {DONE}
  for _, x in ipairs(tally) do out[#out + 1] = x end
  return out
end

if redis.call('PTTL', grace_key) < tonumber(hold_ms) then redis.call('SET', grace_key, '1', 'PX', hold_ms) end
if phase == 'begin' then
  -- Its published components are members like any other: the batches end them.
  if redis.call('DEL', ls_lease_key) > 0 then redis.call('HINCRBY', tally_key, 'keys', 1) end
  if redis.call('HGET', ls_key, F_LIVE) == LIVE_YES then redis.call('HSET', ls_key, F_LIVE, '0') end
  -- The set goes with its last member (batch): counted here, as a key deleted.
  if redis.call('EXISTS', components_key) == 1 then redis.call('HINCRBY', tally_key, 'keys', 1) end
end

local changes = {}
local deleted, keys = 0, 0
for i = 0, (#KEYS - 11) / 2 - 1 do
  local lease_key, leader_key, component = KEYS[9 + 2 * i], KEYS[10 + 2 * i], ARGV[7 + i]
  local h = read_leader(leader_key)
  if h[LIVE] == LIVE_YES then
    local event = 'expired'
    if redis.call('GET', lease_key) then event = 'revoked' end
    changes[#changes + 1] = emit(event, component, nil, 0)
  end
  local k = redis.call('DEL', lease_key, leader_key)
  redis.call('SREM', components_key, component)
  if k > 0 then deleted = deleted + 1 end
  keys = keys + k
end
if deleted > 0 then redis.call('HINCRBY', tally_key, 'leaders', deleted) end
if keys > 0 then redis.call('HINCRBY', tally_key, 'keys', keys) end
redis.call('PEXPIRE', tally_key, tally_ms)
return {DONE, unpack(changes)}
