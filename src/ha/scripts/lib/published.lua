-- What a leadership adds to the leader hash of lib/leader_hash.lua (docs/design.md §3): a
-- component published under a leadership has a leader hash like any other, marked with
-- F_PUBLISHED and the leadership's F_OWNER; the leadership's own hash has the leader hash's fields.
-- A script that includes this file says the names; the loader writes each value in place.
-- @constants
local F_PUBLISHED = 'pub'   -- '1' while the component is published under a leadership
local PUBLISHED_AT = 8      -- F_PUBLISHED's position in what read_leader answers
