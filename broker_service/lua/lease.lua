-- lease: move due SCHEDULED/RETRY tasks to PENDING, then lease up to N PENDING tasks.
-- KEYS[1] pending list   KEYS[2] scheduled zset   KEYS[3] retry zset   KEYS[4] active zset
-- KEYS[5] paused flag
-- ARGV[1] now (ms)   ARGV[2] max tasks   ARGV[3] lease duration (ms)   ARGV[4] worker id
-- ARGV[5] token prefix (unique per call; the token is prefix .. '.' .. n)
-- ARGV[6] task key prefix   ARGV[7] envelope byte budget   ARGV[8] forward limit
-- Returns: flat list, 4 values per leased task: id, envelope, retried, lease-lost count.
-- Stops early once the envelopes exceed the byte budget (at least one task is always leased).
if redis.call('EXISTS', KEYS[5]) == 1 then return {} end
local now = tonumber(ARGV[1])
local prefix = ARGV[6]
local limit = tonumber(ARGV[8])
for _, zkey in ipairs({KEYS[2], KEYS[3]}) do
  local due = redis.call('ZRANGE', zkey, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    redis.call('ZREM', zkey, id)
    redis.call('HSET', prefix .. id, 's', 'pending', 'na', now)
    redis.call('LPUSH', KEYS[1], id)
  end
end
local max = tonumber(ARGV[2])
local expires = now + tonumber(ARGV[3])
local budget = tonumber(ARGV[7])
local out = {}
local taken = 0
local bytes = 0
while taken < max do
  local id = redis.call('RPOP', KEYS[1])
  if not id then break end
  local tkey = prefix .. id
  local f = redis.call('HMGET', tkey, 'b', 'r', 'll')
  if f[1] then
    bytes = bytes + #f[1]
    if taken > 0 and bytes > budget then
      redis.call('RPUSH', KEYS[1], id)
      break
    end
    taken = taken + 1
    redis.call('HSET', tkey, 's', 'active', 'w', ARGV[4], 'lx', expires,
      'tk', ARGV[5] .. '.' .. taken, 'ld', ARGV[3])
    redis.call('ZADD', KEYS[4], expires, id)
    out[#out + 1] = id
    out[#out + 1] = f[1]
    out[#out + 1] = f[2] or '0'
    out[#out + 1] = f[3] or '0'
  end
end
return out
