--[[
  Global cleanup of a job: removes its job manager's leadership, execution plan, resource
  requirements, checkpoints, checkpoint id counter and blobs, all at once; keeps its job
  result. A live job-manager lease is pushed as revoked.

  KEYS[1] index  KEYS[2] log  KEYS[3] job manager lease  KEYS[4] its leader hash
  ARGV[1..3] channel, index floor, log size  (see lib/leadership.lua)  ARGV[4] component
  KEYS[5] components  KEYS[6] dispatcher lease  KEYS[7] its leader hash
  KEYS[8] plan  KEYS[9] resource requirements  KEYS[10] set of job ids with a plan
  KEYS[11] checkpoints  KEYS[12] checkpoint id counter  KEYS[13] blob metadata
  KEYS[14..] the chunks of each blob, as read
  ARGV[5] the dispatcher's fencing token, or 'override'  ARGV[6] job id
  ARGV[7..] the upload id of each blob, as read (same order as KEYS[14..])

  Returns {code, leader, plan, checkpoints, counter, blobs, change payloads...}: each part
  1 deleted or 0 absent; code 0 done  -1 fence
    -9 the blobs changed since the caller read them: retry
]]
-- @include "lib/leadership.lua"
-- @include "lib/fence.lua"

if not fence_holds(KEYS[6], KEYS[7], ARGV[5]) then return {-1} end
local uploads = {}
for i = 7, #ARGV do uploads[ARGV[i]] = true end
local metas = redis.call('HVALS', KEYS[13])
if #metas ~= #ARGV - 6 then return {-9} end
for _, m in ipairs(metas) do
  if not uploads[cjson.decode(m).u] then return {-9} end
end

local changes = {}
local h = read_leader(KEYS[4])
if h[6] == '1' then
  local event = 'expired'
  if redis.call('GET', KEYS[3]) then event = 'revoked' end
  changes[1] = emit(event, ARGV[4], nil, 0)
end
local function gone(n) if n > 0 then return 1 end return 0 end
local leader = gone(redis.call('DEL', KEYS[3], KEYS[4]) + redis.call('SREM', KEYS[5], ARGV[4]))
local plan = gone(redis.call('DEL', KEYS[8], KEYS[9]) + redis.call('SREM', KEYS[10], ARGV[6]))
local checkpoints = redis.call('DEL', KEYS[11])
local counter = redis.call('DEL', KEYS[12])
local blobs = redis.call('DEL', KEYS[13])
for i = 14, #KEYS do redis.call('UNLINK', KEYS[i]) end
return {0, leader, plan, checkpoints, counter, blobs, unpack(changes)}
