-- ack: settle succeeded tasks of one queue: COMPLETED with their result when they have a
-- retention, else deleted; their unique locks are released.
-- KEYS[1] active zset   KEYS[2] completed zset   KEYS[3] processed today   KEYS[4] processed total
-- then KEYS[4+i] the task hash of item i
-- ARGV[1] now (ms)   ARGV[2] TTL of daily counters (s)
-- then per item i: ARGV[3i] task id, ARGV[3i+1] lease token, ARGV[3i+2] result
-- Returns: per item, 0 settled, 1 lease lost, 2 task not found.
local now = tonumber(ARGV[1])
local out = {}
local done = 0
for i = 1, #KEYS - 4 do
  local tkey = KEYS[4 + i]
  local id, token = ARGV[3 * i], ARGV[3 * i + 1]
  local f = redis.call('HMGET', tkey, 's', 'tk', 'rt', 'uk')
  if not f[1] then
    out[i] = 2
  elseif f[1] ~= 'active' or f[2] ~= token then
    out[i] = 1
  else
    redis.call('ZREM', KEYS[1], id)
    if f[4] and redis.call('GET', f[4]) == id then redis.call('DEL', f[4]) end
    local retention = tonumber(f[3] or '0')
    if retention > 0 then
      local expires = now + retention
      redis.call('HDEL', tkey, 'w', 'lx', 'tk', 'ld', 'cx')
      redis.call('HSET', tkey, 's', 'completed', 'ca', now, 'xa', expires, 'res', ARGV[3 * i + 2])
      redis.call('ZADD', KEYS[2], expires, id)
    else
      redis.call('DEL', tkey)
    end
    done = done + 1
    out[i] = 0
  end
end
if done > 0 then
  redis.call('INCRBY', KEYS[3], done)
  redis.call('EXPIRE', KEYS[3], ARGV[2])
  redis.call('INCRBY', KEYS[4], done)
end
return out
