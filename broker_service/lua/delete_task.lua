-- delete_task: an operator deletes a task in any state but ACTIVE and AGGREGATING (a group's
-- member leaves with its group: DeleteGroup), releasing its unique lock.
-- KEYS[1] task records hash   KEYS[2] pending list   KEYS[3] scheduled zset   KEYS[4] retry zset
-- KEYS[5] archived zset   KEYS[6] completed zset
-- KEYS[7] flow hash (a PENDING task with a concurrency key leaves its key's tasks)
-- KEYS[8] envelopes hash   KEYS[9] unique locks hash   KEYS[10] unique expiry zset
-- KEYS[11] key pending zset   KEYS[12] key position hash
-- ARGV[1] task id
-- include: _task
-- include: _unique
-- include: _flow
-- Returns: 0 deleted, 1 wrong state (active, aggregating), 2 not found.
local T = {tasks = KEYS[1], env = KEYS[8]}
local id = ARGV[1]
local s, uk, ck = task_fields(T, id, 's', 'uk', 'ck')
if not s then return 2 end
if s == 'active' or s == 'aggregating' then return 1 end
local from = {scheduled = KEYS[3], retry = KEYS[4], archived = KEYS[5], completed = KEYS[6]}
if s == 'pending' and ck then
  key_unlist({flow = KEYS[7], kpend = KEYS[11], kpos = KEYS[12]}, id)
elseif s == 'pending' then
  redis.call('LREM', KEYS[2], 1, id)
elseif from[s] then
  redis.call('ZREM', from[s], id)
end
unique_release({locks = KEYS[9], expiry = KEYS[10]}, uk, id)
task_del(T, id)
return 0
