-- The leader hash of a component: its fields, and the position of each in what
-- read_leader (lib/leadership.lua) answers. The lease itself is a separate string key,
-- holding the session id, with a TTL. src/ha/replies.ts names the same fields for
-- TypeScript (LEADER_FIELDS).
-- A script that includes this file says the names; the loader writes each value in place.
-- @constants
local F_CONTENDER = 'cid'   -- the contender id
local F_SESSION = 'sid'     -- the session id of the grant
local F_TOKEN = 'tok'       -- the fencing token
local F_ADDRESS = 'addr'    -- the leader's address, '' until confirmed
local F_ACQUIRED = 'at'     -- when it was granted (ms since the epoch, Redis's clock)
local F_LIVE = 'live'       -- LIVE_YES while the lease is live, else '0'
local F_TTL = 'ttl'         -- the lease's TTL (ms): what a renewal without one keeps
local F_LOCK_DELAY = 'ld'   -- the grant's lock delay (ms): how long its expiry keeps others out
local F_DELAYED_UNTIL = 'ldu' -- when the lock delay after its expiry ends (ms, Redis's clock), or 0
local F_OWNER = 'own'       -- the name of the access token that campaigned, '' when the server runs open
local LIVE_YES = '1'

-- Positions in read_leader's answer.
local CONTENDER = 1
local SESSION = 2
local TOKEN = 3
local ADDRESS = 4
local ACQUIRED = 5
local LIVE = 6
local TTL = 7
