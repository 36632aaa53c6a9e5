#!lua flags=allow-oom
--[[
  Writes what the calling server has answered of one cluster back into a Redis that may
  have lost it (docs/design.md §9). A server runs it for every cluster it knows when its
  health check finds Redis restarted, failed over or gone back in time: every server
  holds floors of its own (the checkpoint id counter values it handed out, the index it
  answered), and the first server to find a rollback must not hide it from the others.

  A rolled-back index is raised above the caller's floor. The grace period (no grant
  until every lease that may have been lost has run out) begins when the index shows the
  rollback, or when the caller knows Redis lost writes it acknowledged (`lost`). Each
  checkpoint id counter is raised to at least the caller's floor, so that no id is handed
  out twice, whichever server hands out the next one. Counters are written only while
  the cluster exists (its index key), or after a known loss, when that key may be gone
  with the rest.

  KEYS  1 index  2 log  (lib/leadership.lua)
        3 grace_key (lib/leadership.lua, start_grace)
        4 .. the checkpoint id counters of the jobs the caller has floors for
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 grace_ms: the longest TTL the caller knows was granted in this cluster
        5 lost: '1' when Redis is known to have lost writes the caller acknowledged
        6 .. the counter floors, one per counter key: the next value each may answer

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  A cluster with no index in a Redis not known to have lost writes is gone (deleted, most
  likely): that is answered, with Redis's clock, so that the caller may drop its floors
  once they are old (floorsWriteback.ts). The caller sends a cluster's counters in
  batches, a call each (issue 16: no script runs for time proportional to a tenant's data).

  Returns {DONE, rolled back (1 or 0), a counter raised (1 or 0), gone (1 or 0), Redis's
  clock in microseconds}: either of the first two shows that Redis lost what the caller
  answered
  Codes:
    DONE (0)
]]
-- @include "lib/leadership.lua"

local grace_key = KEYS[3]
local grace_ms, lost = tonumber(ARGV[4]), ARGV[5] == '1'

local rolled = rolled_back()
if rolled then redis.call('SET', index_key, int(next_index(redis.call('GET', index_key), index_floor))) end
if rolled or lost then start_grace(grace_key, grace_ms) end

local raised = 0
if lost or redis.call('EXISTS', index_key) == 1 then
  for i = 4, #KEYS do
    local floor = tonumber(ARGV[i + 2])
    if (tonumber(redis.call('GET', KEYS[i])) or 1) < floor then
      redis.call('SET', KEYS[i], int(floor))
      raised = 1
    end
  end
end

local gone = 0
if not lost and redis.call('EXISTS', index_key) == 0 then gone = 1 end
local rolled_flag = 0
if rolled then rolled_flag = 1 end
return {DONE, rolled_flag, raised, gone, now_us()}
