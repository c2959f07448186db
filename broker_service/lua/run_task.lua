-- run_task: an operator makes a SCHEDULED, RETRY or ARCHIVED task PENDING now.
-- KEYS[1] task records hash   KEYS[2] pending list   KEYS[3] scheduled zset   KEYS[4] retry zset
-- KEYS[5] archived zset   KEYS[6] waiting marker
-- KEYS[7] settings hash   KEYS[8] flow hash   KEYS[9] key ring   KEYS[10] key active hash
-- KEYS[11] key pending zset   KEYS[12] key position hash (a task with a concurrency key goes
--   to its key's tasks)   KEYS[13] envelopes hash
-- ARGV[1] task id   ARGV[2] now (ms)   ARGV[3] notify channel   ARGV[4] queue name
-- include: _task
-- include: _flow
-- Returns: 0 moved, 1 wrong state, 2 not found.
local T = {tasks = KEYS[1], env = KEYS[13]}
local id = ARGV[1]
local r = task_record(T, id)
if not r then return 2 end
local from = {scheduled = KEYS[3], retry = KEYS[4], archived = KEYS[5]}
if not from[r.s] then return 1 end
redis.call('ZREM', from[r.s], id)
task_clear(r, 'aa')
task_save(T, id, task_assign(r, 's', 'pending', 'na', ARGV[2]))
if r.ck then
  key_push({settings = KEYS[7], flow = KEYS[8], ring = KEYS[9], kact = KEYS[10],
    kpend = KEYS[11], kpos = KEYS[12]}, r.ck, id, false)
else
  redis.call('LPUSH', KEYS[2], id)
end
if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 0
