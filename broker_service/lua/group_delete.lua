-- group_delete: an operator deletes one group and all of its (AGGREGATING) members.
-- KEYS[1] groups zset   KEYS[2] due zset   KEYS[3] aggregating counter
-- KEYS[4] the group's member list   KEYS[5] the group's info hash   KEYS[6] group times hash
-- KEYS[7] task records hash   KEYS[8] envelopes hash
-- ARGV[1] group id
-- include: _task
-- Returns: members deleted (0: no such group).
local T = {tasks = KEYS[7], env = KEYS[8]}
local ids = redis.call('LRANGE', KEYS[4], 0, -1)
redis.call('DEL', KEYS[4], KEYS[5])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[6], 'f:' .. ARGV[1], 'l:' .. ARGV[1], 'b:' .. ARGV[1])
if #ids == 0 then return 0 end
redis.call('DECRBY', KEYS[3], #ids)
local deleted = 0
for _, id in ipairs(ids) do
  if task_fields(T, id, 's') == 'aggregating' then
    task_del(T, id)
    deleted = deleted + 1
  end
end
return deleted
