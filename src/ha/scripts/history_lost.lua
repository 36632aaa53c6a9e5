#!lua flags=allow-oom
--[[
  Records in the leadership history (lib/history.lua) a leader this server acknowledged
  that Redis lost (a failover to a replica that lagged, a rollback, lost data): found by
  the detection code (views.ts) once Redis answers again, best effort. The entry of that
  grant is closed as 'lost' when the history still has it open; when the history lost it
  too (it went back with the lease), an entry is added from what the server knew, at the
  end of the history. Nothing is recorded twice: a grant the history knows ended is left.

  KEYS  1 index  2 log  (lib/leadership.lua; nothing is emitted)
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua; nothing is emitted)
        4 component  5 the leader json of the grant as this server knew it

  Flags: allow-oom (small, and it records what happened to leadership)

  Returns {DONE, 1 when recorded, else 0}
  Codes:
    DONE (0)
]]
-- @include "lib/leadership.lua"

local component, leader = ARGV[4], ARGV[5]
local session = cjson.decode(leader).sid

local st = redis.call('HGET', history_state_key, component)
if st then
  local id = string.match(st, '^%S+')
  local grant = redis.call('HGET', history_entries_key, id)
  if grant and cjson.decode(grant).l.sid == session then
    if string.find(st, ' ', 1, true) then return {DONE, 0} end
    history_end(component, 'lost')
    return {DONE, 1}
  end
end
history_grant(component, leader, tonumber(string.match(leader, '"at":(%d+)')))
history_end(component, 'lost')
return {DONE, 1}
