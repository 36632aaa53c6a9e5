-- @constants
-- How a change is published on its cluster's channel (lh:{<cluster id>}:changes). On one
-- Redis, PUBLISH. On a Redis Cluster the loader (scripts.ts) writes SPUBLISH in its place:
-- sharded pub/sub, delivered only to the nodes of the shard that owns the channel's slot
-- (the cluster's hash tag), where a PUBLISH would go to every node of the Redis Cluster.
-- The births (BORN_CHANNEL, one channel for all) stay on PUBLISH everywhere.
local CHANGES_PUBLISH = 'PUBLISH'
