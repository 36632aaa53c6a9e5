-- The scripts' return codes. Each name has one value and one meaning across every script;
-- src/ha/replies.ts holds the same enum (test/scripts.test.ts compares the two) and decodes
-- every reply. Each script's header lists, under Codes:, the ones it may return.
-- A script that includes this file says the names; the loader writes each value in place.
-- @constants
local DONE = 0                      -- the script did what it was asked
local FENCE_STALE = -1              -- the fencing token is not that of a live lease
local IDEMPOTENCY_KEY_REUSED = -2   -- the Idempotency-Key was used for another request
local JOB_RESULT_EXISTS = -3        -- the job has a job result entry already
local JOB_RESULT_NOT_FOUND = -4     -- the job has no job result entry
local CHECKPOINT_ID_NOT_ABOVE = -5  -- the checkpoint id is not above the latest
local EXECUTION_PLAN_NOT_FOUND = -6 -- the job has no execution plan
local STAGED_UPLOAD_GONE = -7       -- the staged chunks of an upload are gone
local COUNTER_BELOW = -8            -- the new value is below the counter's
local CHANGED = -9                  -- keys changed since the caller read them: read, retry
local QUOTA_EXCEEDED = -10          -- a quota of the cluster is reached: its name, limit (and ms
                                    -- until one frees up, for idempotency records) follow
local ANSWER_GONE = -11             -- a remembered answer points to data since gone or changed
local HELD = 1                      -- the lease is held, not by the caller
local FREE = 2                      -- the lease is free
local ALREADY_HELD = 3              -- campaign: this contender holds the lease already
local RENEWED_NEW_LEADER = 4        -- renew: renewed; the leader is not the one the caller knows
local ROLLED_BACK = 5               -- Redis's index is below one the caller has seen: it lost data
local IN_GRACE = 6                  -- no grant until leases lost with Redis's data have run out
local LOCK_DELAY = 7                -- campaign: no grant until the lock delay after an expiry ends
local LEADERSHIP_HELD = 8           -- a leadership leads the cluster: no per-component lease
local COMPONENT_LEASES_HELD = 9     -- per-component leases live in the cluster: no leadership
local PUBLISHED = 10                -- the lease is a component published under a leadership
local NOT_OWNER = 11                -- the leadership was campaigned for with another access token
local NOT_LEASE_OWNER = 12          -- the lease was campaigned for with another access token
