-- nack: settle failed or returned tasks of one queue.
--   action 1 RETRY: retried+1 and RETRY at now + delay, or ARCHIVED when retried == max_retry
--   action 2 ARCHIVE: ARCHIVED now (dead letter)
--   action 3 REQUEUE: back to the head of PENDING, no attempt counted, no failure counted
-- Archiving releases the unique lock.
-- KEYS[1] active   KEYS[2] pending   KEYS[3] retry   KEYS[4] archived
-- KEYS[5] processed today   KEYS[6] processed total   KEYS[7] failed today   KEYS[8] failed total
-- KEYS[9] waiting marker (a requeue wakes long-polling brokers)
-- then KEYS[9+i] the task hash of item i
-- ARGV[1] now (ms)   ARGV[2] TTL of daily counters (s)
-- ARGV[3] backoff base (s)  ARGV[4] backoff exponent  ARGV[5] notify channel
-- ARGV[6] queue name
-- then per item i, 7 values from ARGV[7+7(i-1)]:
--   task id, lease token, action, error text, error type,
--   retry delay ms (-1 = default backoff: retried^exp + base + jitter*(retried+1) seconds,
--   capped at 10 years), jitter (a whole number the caller drew in [0, span))
-- Returns: per item, the next process time (ms) for RETRY/REQUEUE, 0 archived,
--   -1 lease lost, -2 task not found.
local now = tonumber(ARGV[1])
local base, exp = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
local failed = 0
local processed = 0
local requeued = 0
for i = 1, #KEYS - 9 do
  local tkey = KEYS[9 + i]
  local a = 7 + 7 * (i - 1)
  local id, token, action = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local f = redis.call('HMGET', tkey, 's', 'tk', 'r', 'mr', 'uk')
  if not f[1] then
    out[i] = -2
  elseif f[1] ~= 'active' or f[2] ~= token then
    out[i] = -1
  else
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', tkey, 'w', 'lx', 'tk', 'ld', 'cx')
    if action == 3 then
      redis.call('HSET', tkey, 's', 'pending', 'na', now)
      redis.call('RPUSH', KEYS[2], id)
      requeued = requeued + 1
      out[i] = now
    else
      failed = failed + 1
      processed = processed + 1
      redis.call('HSET', tkey, 'e', ARGV[a + 3], 'et', ARGV[a + 4], 'ef', now)
      local retried = tonumber(f[3] or '0')
      if action == 1 and retried < tonumber(f[4]) then
        local delay = tonumber(ARGV[a + 5])
        if delay < 0 then
          local jitter = tonumber(ARGV[a + 6])
          delay = math.min((retried ^ exp + base + jitter * (retried + 1)) * 1000, 315360000000)
        end
        local at = now + delay
        redis.call('HSET', tkey, 's', 'retry', 'r', retried + 1, 'na', at)
        redis.call('ZADD', KEYS[3], at, id)
        out[i] = at
      else
        if action == 1 then redis.call('HSET', tkey, 'r', retried) end
        redis.call('HSET', tkey, 's', 'archived', 'aa', now)
        redis.call('ZADD', KEYS[4], now, id)
        if f[5] and redis.call('GET', f[5]) == id then redis.call('DEL', f[5]) end
        out[i] = 0
      end
    end
  end
end
if requeued > 0 and redis.call('EXISTS', KEYS[9]) == 1 then
  redis.call('PUBLISH', ARGV[5], ARGV[6])
end
if processed > 0 then
  redis.call('INCRBY', KEYS[5], processed)
  redis.call('EXPIRE', KEYS[5], ARGV[2])
  redis.call('INCRBY', KEYS[6], processed)
  redis.call('INCRBY', KEYS[7], failed)
  redis.call('EXPIRE', KEYS[7], ARGV[2])
  redis.call('INCRBY', KEYS[8], failed)
end
return out
