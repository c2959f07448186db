-- run_task: an operator makes a SCHEDULED, RETRY or ARCHIVED task PENDING now.
-- KEYS[1] task hash   KEYS[2] pending list   KEYS[3] scheduled zset   KEYS[4] retry zset
-- KEYS[5] archived zset   KEYS[6] waiting marker
-- ARGV[1] task id   ARGV[2] now (ms)   ARGV[3] notify channel   ARGV[4] queue name
-- Returns: 0 moved, 1 wrong state, 2 not found.
local s = redis.call('HGET', KEYS[1], 's')
if not s then return 2 end
local from = {scheduled = KEYS[3], retry = KEYS[4], archived = KEYS[5]}
if not from[s] then return 1 end
redis.call('ZREM', from[s], ARGV[1])
redis.call('HSET', KEYS[1], 's', 'pending', 'na', ARGV[2])
redis.call('HDEL', KEYS[1], 'aa')
redis.call('LPUSH', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 0
