-- archive_task: an operator moves a PENDING, SCHEDULED or RETRY task to ARCHIVED and releases
-- its unique lock.
-- KEYS[1] task hash   KEYS[2] pending list   KEYS[3] scheduled zset   KEYS[4] retry zset
-- KEYS[5] archived zset
-- KEYS[6] flow hash (a PENDING task with a concurrency key leaves its key's list)
-- KEYS[7] janitor due index (the queue is filed now: its archive may outgrow its limits)
-- ARGV[1] task id   ARGV[2] now (ms)   ARGV[3] key-list prefix   ARGV[4] queue name
-- include: _flow
-- Returns: 0 archived, 1 wrong state, 2 not found.
local f = redis.call('HMGET', KEYS[1], 's', 'uk', 'ck')
if not f[1] then return 2 end
if f[1] == 'pending' and f[3] then
  key_unlist({flow = KEYS[6], kprefix = ARGV[3]}, f[3], ARGV[1])
elseif f[1] == 'pending' then
  redis.call('LREM', KEYS[2], 1, ARGV[1])
elseif f[1] == 'scheduled' then
  redis.call('ZREM', KEYS[3], ARGV[1])
elseif f[1] == 'retry' then
  redis.call('ZREM', KEYS[4], ARGV[1])
else
  return 1
end
redis.call('HSET', KEYS[1], 's', 'archived', 'aa', ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[7], 'LT', ARGV[2], ARGV[4])
if f[2] and redis.call('GET', f[2]) == ARGV[1] then redis.call('DEL', f[2]) end
return 0
