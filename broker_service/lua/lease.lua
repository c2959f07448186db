-- lease: move due SCHEDULED/RETRY tasks to PENDING, then lease up to N PENDING tasks. A task
-- whose deadline has passed is never leased: it is archived as DeadlineExceeded (counted as
-- processed and failed, its unique lock released) and the next one is taken instead.
-- KEYS[1] pending list   KEYS[2] scheduled zset   KEYS[3] retry zset   KEYS[4] active zset
-- KEYS[5] paused flag   KEYS[6] archived zset   KEYS[7] processed today
-- KEYS[8] processed total   KEYS[9] failed today   KEYS[10] failed total
-- ARGV[1] now (ms)   ARGV[2] max tasks   ARGV[3] lease duration (ms)   ARGV[4] worker id
-- ARGV[5] token prefix (unique per call; the token is prefix .. '.' .. n)
-- ARGV[6] task key prefix   ARGV[7] envelope byte budget   ARGV[8] forward limit
-- ARGV[9] most tasks archived for their deadline per call   ARGV[10] TTL of daily counters (s)
-- A leased task records its worker (w), lease expiry (lx), token (tk), duration (ld) and when
-- the lease was granted (la: ListWorkers shows it).
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
    redis.call('HSET', prefix .. id, 's', 'pending')  -- 'na': pending since due
    redis.call('LPUSH', KEYS[1], id)
  end
end
local max = tonumber(ARGV[2])
local expires = now + tonumber(ARGV[3])
local budget = tonumber(ARGV[7])
local expired_cap = tonumber(ARGV[9])
local out = {}
local taken = 0
local bytes = 0
local expired = 0
while taken < max and expired < expired_cap do
  local id = redis.call('RPOP', KEYS[1])
  if not id then break end
  local tkey = prefix .. id
  local f = redis.call('HMGET', tkey, 'b', 'r', 'll', 'dl')
  if f[1] and f[4] and tonumber(f[4]) <= now then
    expired = expired + 1
    redis.call('HSET', tkey, 's', 'archived', 'aa', now, 'ef', now, 'et', 'DeadlineExceeded',
      'e', 'the deadline passed before the task was leased')
    redis.call('ZADD', KEYS[6], now, id)
    local uk = redis.call('HGET', tkey, 'uk')
    if uk and redis.call('GET', uk) == id then redis.call('DEL', uk) end
  elseif f[1] then
    bytes = bytes + #f[1]
    if taken > 0 and bytes > budget then
      redis.call('RPUSH', KEYS[1], id)
      break
    end
    taken = taken + 1
    redis.call('HSET', tkey, 's', 'active', 'w', ARGV[4], 'lx', expires,
      'tk', ARGV[5] .. '.' .. taken, 'ld', ARGV[3], 'la', now)
    redis.call('ZADD', KEYS[4], expires, id)
    out[#out + 1] = id
    out[#out + 1] = f[1]
    out[#out + 1] = f[2] or '0'
    out[#out + 1] = f[3] or '0'
  end
end
if expired > 0 then
  for _, counter in ipairs({KEYS[7], KEYS[9]}) do
    redis.call('INCRBY', counter, expired)
    redis.call('EXPIRE', counter, ARGV[10])
  end
  redis.call('INCRBY', KEYS[8], expired)
  redis.call('INCRBY', KEYS[10], expired)
end
return out
