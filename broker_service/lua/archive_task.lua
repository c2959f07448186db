-- archive_task: an operator moves a PENDING, SCHEDULED or RETRY task to ARCHIVED and releases
-- its unique lock.
-- KEYS[1] task records hash   KEYS[2] pending list   KEYS[3] scheduled zset   KEYS[4] retry zset
-- KEYS[5] archived zset
-- KEYS[6] flow hash (a PENDING task with a concurrency key leaves its key's tasks)
-- KEYS[7] janitor due index (the queue is filed now: its archive may outgrow its limits)
-- KEYS[8] envelopes hash   KEYS[9] unique locks hash   KEYS[10] unique expiry zset
-- KEYS[11] key pending zset   KEYS[12] key position hash
-- ARGV[1] task id   ARGV[2] now (ms)   ARGV[3] queue name
-- include: _task
-- include: _unique
-- include: _flow
-- Returns: 0 archived, 1 wrong state, 2 not found.
local T = {tasks = KEYS[1], env = KEYS[8]}
local id = ARGV[1]
local r = task_record(T, id)
if not r then return 2 end
if r.s == 'pending' and r.ck then
  key_unlist({flow = KEYS[6], kpend = KEYS[11], kpos = KEYS[12]}, id)
elseif r.s == 'pending' then
  redis.call('LREM', KEYS[2], 1, id)
elseif r.s == 'scheduled' then
  redis.call('ZREM', KEYS[3], id)
elseif r.s == 'retry' then
  redis.call('ZREM', KEYS[4], id)
else
  return 1
end
task_save(T, id, task_assign(r, 's', 'archived', 'aa', ARGV[2]))
redis.call('ZADD', KEYS[5], ARGV[2], id)
redis.call('ZADD', KEYS[7], 'LT', ARGV[2], ARGV[3])
unique_release({locks = KEYS[9], expiry = KEYS[10]}, r.uk, id)
return 0
