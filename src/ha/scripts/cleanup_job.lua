#!lua flags=allow-oom
--[[
  Global cleanup of a job: removes its job manager's leadership (or its leader information
  published under the cluster's leadership), execution plan, resource
  requirements, checkpoints, checkpoint id counter and blobs, all at once; keeps its job
  result. A live job-manager lease is pushed as revoked. Its history entries stay, to age
  out (lib/history.lua): the history is a record of the past, not state of the job.

  KEYS  1 index  2 log  (lib/leadership.lua)
        3 lease_key  4 leader_key: the job manager's lease and leader hash
        5 components_key  6 dispatcher_lease_key  7 dispatcher_leader_key
        8 plan_key  9 requirements_key  10 plans_key: the sorted set of job ids with a plan
        11 checkpoints_key  12 counter_key  13 blobs_key: the blob metadata
        14 ls_lease_key  15 ls_key: the cluster's leadership lease and hash (lib/fence.lua)
        16 published_key: the components published under it (lib/cluster_leadership.lua)
        17 usage_key: the cluster's usage, where its blobs' quota is freed (lib/quota.lua)
        18.. the chunks of each blob, as read
        last 3: history, history:entries, history:state (lib/history.lua)
  ARGV  1..3 channel, index floor, log size  (lib/leadership.lua)
        4 component: the job manager's  5 dispatcher_token: its fencing token, or 'override'
        6 job_id  7.. the upload id of each blob, as read (same order as KEYS 18..)

  Flags: allow-oom (it frees memory or keeps leadership safe: it runs on a full Redis)

  Returns {code, leader, plan, checkpoints, counter, blobs, change payloads...}: each part
  1 deleted or 0 absent
  Codes:
    DONE (0)
    FENCE_STALE (-1)             the dispatcher's fence does not hold
    CHANGED (-9)                 the blobs changed since the caller read them: retry
]]
-- @include "lib/leadership.lua"
-- @include "lib/fence.lua"
-- @include "lib/quota.lua"

local lease_key, leader_key, components_key = KEYS[3], KEYS[4], KEYS[5]
local dispatcher_lease_key, dispatcher_leader_key = KEYS[6], KEYS[7]
local plan_key, requirements_key, plans_key = KEYS[8], KEYS[9], KEYS[10]
local checkpoints_key, counter_key, blobs_key = KEYS[11], KEYS[12], KEYS[13]
local ls_lease_key, ls_key, published_key, usage_key = KEYS[14], KEYS[15], KEYS[16], KEYS[17]
local FIRST_CHUNKS_KEY = 18
local component, dispatcher_token, job_id = ARGV[4], ARGV[5], ARGV[6]
local FIRST_UPLOAD = 7

if not fence_holds(dispatcher_lease_key, dispatcher_leader_key, dispatcher_token, ls_lease_key, ls_key) then return {FENCE_STALE} end
local uploads = {}
for i = FIRST_UPLOAD, #ARGV do uploads[ARGV[i]] = true end
local metas = redis.call('HVALS', blobs_key)
if #metas ~= #ARGV - FIRST_UPLOAD + 1 then return {CHANGED} end
for _, m in ipairs(metas) do
  if not uploads[cjson.decode(m).u] then return {CHANGED} end
end

local changes = {}
local h = read_leader(leader_key)
if h[LIVE] == LIVE_YES then
  local event = 'expired'
  if redis.call('GET', lease_key) then event = 'revoked' end
  changes[1] = emit(event, component, nil, 0)
end
history_forget(component)
local function gone(n) if n > 0 then return 1 end return 0 end
-- A job manager published under a leadership is unpublished with it.
local leader = gone(redis.call('DEL', lease_key, leader_key) + redis.call('SREM', components_key, component)
  + redis.call('HDEL', published_key, component))
local plan = gone(redis.call('DEL', plan_key, requirements_key) + redis.call('ZREM', plans_key, job_id))
local checkpoints = redis.call('DEL', checkpoints_key)
local counter = redis.call('DEL', counter_key)
quota_release_blobs(usage_key, metas)
local blobs = redis.call('DEL', blobs_key)
for i = FIRST_CHUNKS_KEY, #KEYS - 3 do redis.call('UNLINK', KEYS[i]) end
return {DONE, leader, plan, checkpoints, counter, blobs, unpack(changes)}
