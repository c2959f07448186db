-- queue_delete: one chunk of DeleteQueue: deletes at most ARGV[2] tasks of the queue's state
-- indexes (pending, scheduled, retry, archived, completed), releasing their unique locks.
-- Refuses (and changes nothing) while a task is ACTIVE. Groups are deleted afterwards, one
-- group_delete.lua call each; settled markers by a SCAN (no index names them).
-- KEYS[1] pending   KEYS[2] scheduled   KEYS[3] retry   KEYS[4] archived   KEYS[5] completed
-- KEYS[6] active   KEYS[7] key ring   KEYS[8] flow hash
-- ARGV[1] task key prefix   ARGV[2] most tasks per call   ARGV[3] key-list prefix
-- Tasks waiting in concurrency-key lists are reached through the ring: with no task ACTIVE,
-- every key that has waiting tasks is in it (see _flow.lua).
-- Returns: {tasks deleted, 1 when no state index holds a task any more else 0}, or {-1} while a
-- task is ACTIVE.
if redis.call('ZCARD', KEYS[6]) > 0 then return {-1} end
local budget = tonumber(ARGV[2])
local deleted = 0
local function drop(id)
  local tkey = ARGV[1] .. id
  local uk = redis.call('HGET', tkey, 'uk')
  if uk and redis.call('GET', uk) == id then redis.call('DEL', uk) end
  redis.call('DEL', tkey)
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
while deleted < budget do
  local ck = redis.call('LINDEX', KEYS[7], 0)
  if not ck then break end
  local list = ARGV[3] .. ck
  ids = redis.call('LRANGE', list, 0, budget - deleted - 1)
  for _, id in ipairs(ids) do drop(id) end
  if #ids > 0 then
    redis.call('LTRIM', list, #ids, -1)
    redis.call('HINCRBY', KEYS[8], 'kn', -#ids)
  end
  if redis.call('LLEN', list) == 0 then redis.call('LPOP', KEYS[7]) end
end
local left = redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[7])
for k = 2, 5 do left = left + redis.call('ZCARD', KEYS[k]) end
return {deleted, left == 0 and 1 or 0}
