-- queue_delete: one chunk of DeleteQueue: deletes at most ARGV[1] tasks of the queue's state
-- indexes (pending, scheduled, retry, archived, completed, and the concurrency keys' PENDING
-- tasks), releasing their unique locks. Refuses (and changes nothing) while a task is ACTIVE.
-- Groups are deleted afterwards, one group_delete.lua call each; settled markers by a SCAN (no
-- index names them).
-- KEYS[1] pending   KEYS[2] scheduled   KEYS[3] retry   KEYS[4] archived   KEYS[5] completed
-- KEYS[6] active   KEYS[7] key ring   KEYS[8] flow hash   KEYS[9] task records hash
-- KEYS[10] envelopes hash   KEYS[11] unique locks hash   KEYS[12] unique expiry zset
-- KEYS[13] key pending zset   KEYS[14] key position hash
-- ARGV[1] most tasks per call
-- Returns: {tasks deleted, 1 when no state index holds a task any more else 0}, or {-1} while a
-- task is ACTIVE.
-- include: _task
-- include: _unique
if redis.call('ZCARD', KEYS[6]) > 0 then return {-1} end
local T = {tasks = KEYS[9], env = KEYS[10]}
local U = {locks = KEYS[11], expiry = KEYS[12]}
local budget = tonumber(ARGV[1])
local deleted = 0
local function drop(id)
  unique_release(U, (task_fields(T, id, 'uk')), id)
  task_del(T, id)
  deleted = deleted + 1
end
local ids = redis.call('LRANGE', KEYS[1], 0, budget - 1)
for _, id in ipairs(ids) do drop(id) end
if #ids > 0 then redis.call('LTRIM', KEYS[1], #ids, -1) end
for k = 2, 5 do
  if deleted < budget then
    ids = redis.call('ZRANGE', KEYS[k], 0, budget - deleted - 1)
    for _, id in ipairs(ids) do drop(id) end
    if #ids > 0 then redis.call('ZREMRANGEBYRANK', KEYS[k], 0, #ids - 1) end
  end
end
if deleted < budget then
  local members = redis.call('ZRANGE', KEYS[13], 0, budget - deleted - 1)
  local gone = {}
  for _, member in ipairs(members) do
    local id = string.sub(member, string.find(member, '\0', 1, true) + 16)
    drop(id)
    gone[#gone + 1] = id
  end
  if #members > 0 then
    redis.call('ZREMRANGEBYRANK', KEYS[13], 0, #members - 1)
    for i = 1, #gone, 1000 do
      redis.call('HDEL', KEYS[14], unpack(gone, i, math.min(i + 999, #gone)))
    end
    redis.call('HINCRBY', KEYS[8], 'kn', -#members)
  end
end
-- With no task ACTIVE, the ring holds exactly the keys with PENDING tasks.
if redis.call('ZCARD', KEYS[13]) == 0 then redis.call('DEL', KEYS[7]) end
local left = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[13])
for k = 2, 5 do left = left + redis.call('ZCARD', KEYS[k]) end
return {deleted, left == 0 and 1 or 0}
