-- lease: move due SCHEDULED/RETRY tasks to PENDING, then lease up to N PENDING tasks. A task
-- whose deadline has passed is never leased: it is archived as DeadlineExceeded (counted as
-- processed and failed, its unique lock released) and the next one is taken instead.
-- Flow control: the queue's settings may cap the call (a token bucket of `rate` leases per
-- second refilled from Redis' TIME, so every broker agrees; at most `max_active` tasks in the
-- active zset), and tasks with a concurrency key wait in the key pending set, served round-robin
-- from the ring (see _flow.lua), alternating with the queue's plain pending list.
-- KEYS[1] pending list   KEYS[2] scheduled zset   KEYS[3] retry zset   KEYS[4] active zset
-- KEYS[5] paused flag   KEYS[6] archived zset   KEYS[7] processed today
-- KEYS[8] processed total   KEYS[9] failed today   KEYS[10] failed total
-- KEYS[11] settings hash   KEYS[12] flow hash   KEYS[13] key ring   KEYS[14] key active hash
-- KEYS[15] reclaim due index   KEYS[16] janitor due index (the queue is filed at its lease
--   expiry, and now when a task is archived; the earliest instant kept)
-- KEYS[17] task records hash   KEYS[18] envelopes hash   KEYS[19] unique locks hash
-- KEYS[20] unique expiry zset   KEYS[21] key pending zset   KEYS[22] key position hash
-- ARGV[1] now (ms)   ARGV[2] max tasks   ARGV[3] lease duration (ms)   ARGV[4] worker id
-- ARGV[5] token prefix (unique per call; the token is prefix .. '.' .. n)
-- ARGV[6] envelope byte budget   ARGV[7] forward limit
-- ARGV[8] most tasks archived for their deadline per call   ARGV[9] TTL of daily counters (s)
-- ARGV[10] queue name
-- A leased task records its worker (w), lease expiry (lx), token (tk), duration (ld) and when
-- the lease was granted (la: ListWorkers shows it). The settings hash records the call (ll).
-- Returns: {held, then 4 values per leased task: id, envelope, retried, lease-lost count};
--   held: 0 when no limit stopped the call, -1 when max active or the key limits did (a slot
--   must free), else the Redis-clock instant (ms) of the next rate-limit token.
-- Stops early once the envelopes exceed the byte budget (at least one task is always leased).
-- include: _task
-- include: _unique
-- include: _flow
if redis.call('EXISTS', KEYS[5]) == 1 then return {0} end
local now = tonumber(ARGV[1])
local fk = {settings = KEYS[11], flow = KEYS[12], ring = KEYS[13], kact = KEYS[14],
  kpend = KEYS[21], kpos = KEYS[22]}
local T = {tasks = KEYS[17], env = KEYS[18]}
local U = {locks = KEYS[19], expiry = KEYS[20]}
local limit = tonumber(ARGV[7])
for _, zkey in ipairs({KEYS[2], KEYS[3]}) do
  local due = redis.call('ZRANGE', zkey, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    redis.call('ZREM', zkey, id)
    local r = task_record(T, id)
    local ck = r and r.ck
    if r then
      r.s = 'pending'  -- 'na': pending since due
      task_save(T, id, r)
    end
    if ck then key_push(fk, ck, id, false) else redis.call('LPUSH', KEYS[1], id) end
  end
end
local asked = tonumber(ARGV[2])
local max = asked
-- kx: set by the first enqueue of a task with a concurrency key (a queue without keys skips
-- every key step); ll: the latest lease call, kept to the second (one read per call,
-- one write per second)
local cfg = redis.call('HMGET', KEYS[11], 'rr', 'rb', 'ma', 'kx', 'll')
if not cfg[5] or now - tonumber(cfg[5]) >= 1000 then redis.call('HSET', KEYS[11], 'll', now) end
local rate, tokens, tnow = tonumber(cfg[1]), 0, 0
if rate then
  local t = redis.call('TIME')
  tnow = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  local burst = tonumber(cfg[2]) or math.max(1, math.ceil(rate))
  local st = redis.call('HMGET', KEYS[12], 'tk', 'tt')
  tokens = tonumber(st[1]) or burst
  if st[2] then tokens = tokens + math.max(0, tnow - tonumber(st[2])) * rate / 1000 end
  if tokens > burst then tokens = burst end
  -- 1e-9: a bucket refilled to 0.9999999999 by float steps holds its whole token
  max = math.min(max, math.floor(tokens + 1e-9))
end
local slot_bound = false
local max_active = tonumber(cfg[3])
if max_active and max_active > 0 then
  local free = math.max(0, max_active - redis.call('ZCARD', KEYS[4]))
  if free < max then
    max = free
    slot_bound = true
  end
end
local expires = now + tonumber(ARGV[3])
local budget = tonumber(ARGV[6])
local expired_cap = tonumber(ARGV[8])
local out = {0}
local taken = 0
local bytes = 0
local expired = 0
-- Plain and keyed tasks alternate slot by slot; which goes first depends on the instant, so
-- one-task calls serve both.
local keys_used = cfg[4] ~= false
local keyed = keys_used and redis.call('LLEN', KEYS[13]) > 0
local plain = true
local turn_keyed = keyed and (now % 2 == 0)
local exhausted = false
local function next_task()
  while keyed or plain do
    if keyed and (turn_keyed or not plain) then
      turn_keyed = false
      local ck = redis.call('LPOP', KEYS[13])
      if not ck then
        keyed = false
      else
        local act = tonumber(redis.call('HGET', KEYS[14], ck) or '0')
        if act < key_limit(fk) then
          local id = key_pop(fk, ck)
          if id then
            redis.call('HSET', KEYS[14], ck, act + 1)
            redis.call('HINCRBY', KEYS[12], 'kn', -1)
            if act + 1 < key_limit(fk) and key_waiting(fk, ck) > 0 then
              redis.call('RPUSH', KEYS[13], ck)
            end
            return id, ck
          end
        end
        -- a stale ring entry: dropped
      end
    else
      turn_keyed = keyed
      local id = redis.call('RPOP', KEYS[1])
      if id then return id, nil end
      plain = false
    end
  end
  exhausted = true
  return nil, nil
end
while taken < max and expired < expired_cap do
  local id, ck = next_task()
  if not id then break end
  local r = task_record(T, id)
  local env = r and task_envelope(T, id)
  if env and r.dl and tonumber(r.dl) <= now then
    expired = expired + 1
    if ck then key_release(fk, ck) end
    task_save(T, id, task_assign(r, 's', 'archived', 'aa', now, 'ef', now,
      'et', 'DeadlineExceeded', 'e', 'the deadline passed before the task was leased'))
    redis.call('ZADD', KEYS[6], now, id)
    redis.call('ZADD', KEYS[16], 'LT', now, ARGV[10])
    unique_release(U, r.uk, id)
  elseif env then
    bytes = bytes + #env
    if taken > 0 and bytes > budget then
      if ck then
        key_release(fk, ck)
        key_push(fk, ck, id, true)
      else
        redis.call('RPUSH', KEYS[1], id)
      end
      break
    end
    taken = taken + 1
    task_save(T, id, task_assign(r, 's', 'active', 'w', ARGV[4], 'lx', expires,
      'tk', ARGV[5] .. '.' .. taken, 'ld', ARGV[3], 'la', now))
    redis.call('ZADD', KEYS[4], expires, id)
    out[#out + 1] = id
    out[#out + 1] = env
    out[#out + 1] = r.r or '0'
    out[#out + 1] = r.ll or '0'
  elseif ck then
    key_release(fk, ck)  -- a listed id whose record is gone
  end
end
if taken > 0 then redis.call('ZADD', KEYS[15], 'LT', expires, ARGV[10]) end
if rate then
  tokens = tokens - taken
  redis.call('HSET', KEYS[12], 'tk', tokens, 'tt', tnow)
end
-- Held: a limit stopped the call while tasks were still waiting.
if taken < asked then
  if (rate or slot_bound) and taken >= max and not exhausted
      and (redis.call('LLEN', KEYS[1]) > 0 or redis.call('LLEN', KEYS[13]) > 0) then
    if slot_bound then
      out[1] = -1
    else
      out[1] = math.ceil(tnow + (1 - tokens) * 1000 / rate)
    end
  elseif exhausted and keys_used and tonumber(redis.call('HGET', KEYS[12], 'kn') or '0') > 0 then
    out[1] = -1  -- only keys at their limit have tasks
  end
end
if expired > 0 then
  for _, counter in ipairs({KEYS[7], KEYS[9]}) do
    redis.call('INCRBY', counter, expired)
    redis.call('EXPIRE', counter, ARGV[9])
  end
  redis.call('INCRBY', KEYS[8], expired)
  redis.call('INCRBY', KEYS[10], expired)
end
return out
