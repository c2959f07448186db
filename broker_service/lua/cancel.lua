-- cancel: flag an ACTIVE task so that its worker's next heartbeat answers CANCEL_REQUESTED.
-- KEYS[1] task hash
-- Returns: 0 flagged, 1 not active, 2 not found.
local s = redis.call('HGET', KEYS[1], 's')
if not s then return 2 end
if s ~= 'active' then return 1 end
redis.call('HSET', KEYS[1], 'cx', '1')
return 0
