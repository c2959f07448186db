-- group_delete: an operator deletes one group and all of its (AGGREGATING) members.
-- KEYS[1] groups zset   KEYS[2] due zset   KEYS[3] aggregating counter
-- KEYS[4] the group's member list   KEYS[5] the group's info hash   KEYS[6] group times hash
-- ARGV[1] task key prefix   ARGV[2] group id
-- Returns: members deleted (0: no such group).
local ids = redis.call('LRANGE', KEYS[4], 0, -1)
redis.call('DEL', KEYS[4], KEYS[5])
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[6], 'f:' .. ARGV[2], 'l:' .. ARGV[2], 'b:' .. ARGV[2])
if #ids == 0 then return 0 end
redis.call('DECRBY', KEYS[3], #ids)
local deleted = 0
for _, id in ipairs(ids) do
  local tkey = ARGV[1] .. id
  if redis.call('HGET', tkey, 's') == 'aggregating' then
    redis.call('DEL', tkey)
    deleted = deleted + 1
  end
end
return deleted
