-- delete_task: an operator deletes a task in any state but ACTIVE and AGGREGATING (a group's
-- member leaves with its group: DeleteGroup), releasing its unique lock.
-- KEYS[1] task hash   KEYS[2] pending list   KEYS[3] scheduled zset   KEYS[4] retry zset
-- KEYS[5] archived zset   KEYS[6] completed zset
-- KEYS[7] flow hash (a PENDING task with a concurrency key leaves its key's list)
-- ARGV[1] task id   ARGV[2] key-list prefix
-- include: _flow
-- Returns: 0 deleted, 1 wrong state (active, aggregating), 2 not found.
local f = redis.call('HMGET', KEYS[1], 's', 'uk', 'ck')
if not f[1] then return 2 end
if f[1] == 'active' or f[1] == 'aggregating' then return 1 end
local from = {scheduled = KEYS[3], retry = KEYS[4], archived = KEYS[5], completed = KEYS[6]}
if f[1] == 'pending' and f[3] then
  key_unlist({flow = KEYS[7], kprefix = ARGV[2]}, f[3], ARGV[1])
elseif f[1] == 'pending' then
  redis.call('LREM', KEYS[2], 1, ARGV[1])
elseif from[f[1]] then
  redis.call('ZREM', from[f[1]], ARGV[1])
end
if f[2] and redis.call('GET', f[2]) == ARGV[1] then redis.call('DEL', f[2]) end
redis.call('DEL', KEYS[1])
return 0
