-- queue_delete: one chunk of DeleteQueue: deletes at most ARGV[4] tasks of the queue (from its
-- state indexes, then its groups' member lists) with their unique locks and settled markers.
-- Refuses (and changes nothing) while a task is ACTIVE.
-- KEYS[1] pending   KEYS[2] scheduled   KEYS[3] retry   KEYS[4] archived   KEYS[5] completed
-- KEYS[6] active   KEYS[7] groups zset   KEYS[8] group due zset   KEYS[9] aggregating counter
-- ARGV[1] task key prefix   ARGV[2] settled marker prefix   ARGV[3] group members prefix
-- ARGV[4] most tasks per call   ARGV[5] group info prefix
-- Returns: {tasks deleted, 1 when nothing is left else 0} or {-1} while a task is ACTIVE.
if redis.call('ZCARD', KEYS[6]) > 0 then return {-1} end
local budget = tonumber(ARGV[4])
local deleted = 0
local function drop(id)
  local tkey = ARGV[1] .. id
  local uk = redis.call('HGET', tkey, 'uk')
  if uk and redis.call('GET', uk) == id then redis.call('DEL', uk) end
  redis.call('DEL', tkey, ARGV[2] .. id)
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
  local gid = redis.call('ZRANGE', KEYS[7], 0, 0)[1]
  if not gid then break end
  local mkey = ARGV[3] .. gid
  ids = redis.call('LRANGE', mkey, 0, budget - deleted - 1)
  for _, id in ipairs(ids) do drop(id) end
  if #ids > 0 then redis.call('DECRBY', KEYS[9], #ids) end
  redis.call('LTRIM', mkey, #ids, -1)
  if redis.call('LLEN', mkey) == 0 then
    redis.call('DEL', mkey, ARGV[5] .. gid)
    redis.call('ZREM', KEYS[7], gid)
    redis.call('ZREM', KEYS[8], gid)
  end
end
local left = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[7])
for k = 2, 5 do left = left + redis.call('ZCARD', KEYS[k]) end
return {deleted, left == 0 and 1 or 0}
