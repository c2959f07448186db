-- run_task: an operator makes a SCHEDULED, RETRY or ARCHIVED task PENDING now.
-- KEYS[1] task hash   KEYS[2] pending list   KEYS[3] scheduled zset   KEYS[4] retry zset
-- KEYS[5] archived zset   KEYS[6] waiting marker
-- KEYS[7] settings hash   KEYS[8] flow hash   KEYS[9] key ring   KEYS[10] key active hash
-- ARGV[1] task id   ARGV[2] now (ms)   ARGV[3] notify channel   ARGV[4] queue name
-- ARGV[5] key-list prefix (a task with a concurrency key goes to its key's list)
-- include: _flow
-- Returns: 0 moved, 1 wrong state, 2 not found.
local s, ck = unpack(redis.call('HMGET', KEYS[1], 's', 'ck'))
if not s then return 2 end
local from = {scheduled = KEYS[3], retry = KEYS[4], archived = KEYS[5]}
if not from[s] then return 1 end
redis.call('ZREM', from[s], ARGV[1])
redis.call('HSET', KEYS[1], 's', 'pending', 'na', ARGV[2])
redis.call('HDEL', KEYS[1], 'aa')
if ck then
  key_push({settings = KEYS[7], flow = KEYS[8], ring = KEYS[9], kact = KEYS[10],
    kprefix = ARGV[5]}, ck, ARGV[1], false)
else
  redis.call('LPUSH', KEYS[2], ARGV[1])
end
if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 0
