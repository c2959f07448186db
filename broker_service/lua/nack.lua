-- nack: settle failed or returned tasks of one queue.
--   action 1 RETRY: retried+1 and RETRY at now + delay, or ARCHIVED when retried == max_retry
--   action 2 ARCHIVE: ARCHIVED now (dead letter)
--   action 3 REQUEUE: back to the head of PENDING, no attempt counted, no failure counted
--   action 4 RELEASE: RETRY at now + delay with released_count+1 and no attempt counted, or
--     ARCHIVED as NoHandler when released_count reaches the release cap
-- A RETRY or RELEASE whose next instant would fall after the task's deadline archives it as
-- DeadlineExceeded. Archiving releases the unique lock and counts a failure. A settled lease
-- leaves a marker (its token, until the lease would have expired plus a slack) so that a repeated Nack with the same token is
-- answered "already settled" instead of "lease lost".
-- KEYS[1] active   KEYS[2] pending   KEYS[3] retry   KEYS[4] archived
-- KEYS[5] processed today   KEYS[6] processed total   KEYS[7] failed today   KEYS[8] failed total
-- KEYS[9] waiting marker (a requeue wakes long-polling brokers)
-- KEYS[10] settings hash   KEYS[11] flow hash   KEYS[12] key ring   KEYS[13] key active hash
-- KEYS[14] held marker (a settled task frees a slot: wake Leases held back by a limit)
-- KEYS[15] forward due index (a retry files the queue at its instant, the earliest kept)
-- KEYS[16] janitor due index (archiving files the queue now)
-- KEYS[17] task records hash   KEYS[18] envelopes hash   KEYS[19] unique locks hash
-- KEYS[20] unique expiry zset   KEYS[21] key pending zset   KEYS[22] key position hash
-- then per item i: KEYS[22+i] the task's settled marker
-- ARGV[1] now (ms)   ARGV[2] TTL of daily counters (s)
-- ARGV[3] backoff base (s)  ARGV[4] backoff exponent  ARGV[5] notify channel
-- ARGV[6] queue name   ARGV[7] release cap   ARGV[8] settled-marker slack after the lease expiry (ms)
-- then per item i, 7 values from ARGV[9+7(i-1)]:
--   task id, lease token, action, error text, error type,
--   delay ms (RETRY: -1 = default backoff: retried^exp + base + jitter*(retried+1) seconds,
--   capped at 10 years; RELEASE: always given), jitter (a whole number drawn in [0, span))
-- Returns: per item, the next process time (ms) for RETRY/RELEASE/REQUEUE, 0 archived,
--   -1 lease lost, -2 task not found, -3 already settled by this token.
-- include: _task
-- include: _unique
-- include: _flow
local now = tonumber(ARGV[1])
local fk = {settings = KEYS[10], flow = KEYS[11], ring = KEYS[12], kact = KEYS[13],
  kpend = KEYS[21], kpos = KEYS[22]}
local T = {tasks = KEYS[17], env = KEYS[18]}
local U = {locks = KEYS[19], expiry = KEYS[20]}
local settled = 0
local base, exp = tonumber(ARGV[3]), tonumber(ARGV[4])
local release_cap = tonumber(ARGV[7])
local out = {}
local failed = 0
local processed = 0
local requeued = 0

-- The record `r` is changed in place; the caller saves it once.
local function archive(r, id)
  task_assign(r, 's', 'archived', 'aa', now)
  redis.call('ZADD', KEYS[4], now, id)
  redis.call('ZADD', KEYS[16], 'LT', now, ARGV[6])
  unique_release(U, r.uk, id)
  failed = failed + 1
  processed = processed + 1
  return 0
end

-- RETRY (or RELEASE) at `at`; archived as DeadlineExceeded instead when `at` falls after the
-- task's deadline (dl). `why` tells what the worker reported.
local function retry_at(r, id, at, why)
  if r.dl and at > tonumber(r.dl) then
    task_assign(r, 'et', 'DeadlineExceeded', 'e', 'the next attempt would start '
      .. 'after the deadline; ' .. why)
    return archive(r, id)
  end
  task_assign(r, 's', 'retry', 'na', at)
  redis.call('ZADD', KEYS[3], at, id)
  redis.call('ZADD', KEYS[15], 'LT', at, ARGV[6])
  return at
end

for i = 1, #KEYS - 22 do
  local skey = KEYS[22 + i]
  local a = 9 + 7 * (i - 1)
  local id, token, action = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local err, etype, delay = ARGV[a + 3], ARGV[a + 4], tonumber(ARGV[a + 5])
  local r = task_record(T, id)
  if r and r.s == 'active' and r.tk == token then
    redis.call('ZREM', KEYS[1], id)
    settled = settled + 1
    if r.ck then key_release(fk, r.ck) end
    local left = math.max(tonumber(r.lx or now) - now, 0)
    task_clear(r, 'w', 'lx', 'tk', 'ld', 'cx')
    redis.call('SET', skey, token, 'PX', left + tonumber(ARGV[8]))
    if action == 3 then
      task_assign(r, 's', 'pending', 'na', now)
      if r.ck then key_push(fk, r.ck, id, true) else redis.call('RPUSH', KEYS[2], id) end
      requeued = requeued + 1
      out[i] = now
    elseif action == 4 then
      local released = tonumber(r.rc or '0') + 1
      task_assign(r, 'rc', released, 'e', err, 'et', etype, 'ef', now)
      if released >= release_cap then
        task_assign(r, 'et', 'NoHandler', 'e', 'released ' .. released
          .. ' times (the release cap) by workers without a handler for its type; last: '
          .. etype .. ': ' .. err)
        out[i] = archive(r, id)
      else
        out[i] = retry_at(r, id, now + delay, 'released: ' .. etype .. ': ' .. err)
      end
    else
      task_assign(r, 'e', err, 'et', etype, 'ef', now)
      local retried = tonumber(r.r or '0')
      if action == 1 and retried < tonumber(r.mr) then
        if delay < 0 then
          local jitter = tonumber(ARGV[a + 6])
          delay = math.min((retried ^ exp + base + jitter * (retried + 1)) * 1000, 315360000000)
        end
        out[i] = retry_at(r, id, now + delay, 'the attempt failed: ' .. etype .. ': ' .. err)
        if out[i] > 0 then
          task_assign(r, 'r', retried + 1)
          failed = failed + 1
          processed = processed + 1
        end
      else
        out[i] = archive(r, id)
      end
    end
    task_save(T, id, r)
  elseif redis.call('GET', skey) == token then
    out[i] = -3
  elseif not r then
    out[i] = -2
  else
    out[i] = -1
  end
end
if (requeued > 0 and redis.call('EXISTS', KEYS[9]) == 1)
    or (settled > 0 and redis.call('EXISTS', KEYS[14]) == 1) then
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
