-- reclaim: return tasks whose lease expired to the head of PENDING without counting an
-- attempt; a task whose leases expired lease_lost_cap times is archived as poison, and one
-- whose deadline has passed is archived as DeadlineExceeded (counted as processed and failed).
-- KEYS[1] active zset   KEYS[2] pending list   KEYS[3] archived zset   KEYS[4] waiting marker
-- KEYS[5] processed today   KEYS[6] processed total   KEYS[7] failed today
-- KEYS[8] failed total   KEYS[9] settings hash   KEYS[10] flow hash   KEYS[11] key ring
-- KEYS[12] key active hash   KEYS[13] held marker (freed slots wake Leases held by a limit)
-- KEYS[14] reclaim due index: the queue is re-filed there at its next lease expiry, or
--   dropped when no lease is left   KEYS[15] janitor due index (archiving files the queue now)
-- KEYS[16] task records hash   KEYS[17] envelopes hash   KEYS[18] unique locks hash
-- KEYS[19] unique expiry zset   KEYS[20] key pending zset   KEYS[21] key position hash
-- ARGV[1] now (ms)   ARGV[2] max tasks to reclaim   ARGV[3] lease-lost cap
-- ARGV[4] notify channel   ARGV[5] queue name   ARGV[6] TTL of daily counters (s)
-- A task of a concurrency key frees its key's slot and returns to the front of its key's tasks.
-- Returns: {tasks returned to pending, tasks archived, next lease expiry ms or -1}
-- include: _task
-- include: _unique
-- include: _flow
local now = tonumber(ARGV[1])
local fk = {settings = KEYS[9], flow = KEYS[10], ring = KEYS[11], kact = KEYS[12],
  kpend = KEYS[20], kpos = KEYS[21]}
local T = {tasks = KEYS[16], env = KEYS[17]}
local U = {locks = KEYS[18], expiry = KEYS[19]}
local cap = tonumber(ARGV[3])
local expired = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]),
  'WITHSCORES')
local returned, archived, late = 0, 0, 0
for e = 1, #expired, 2 do
  local id, lost_at = expired[e], expired[e + 1]
  redis.call('ZREM', KEYS[1], id)
  local r = task_record(T, id)
  if r then
    local lost = (tonumber(r.ll) or 0) + 1
    task_assign(r, 'll', lost)
    local ck = r.ck
    if ck then key_release(fk, ck) end
    task_clear(r, 'w', 'lx', 'tk', 'ld', 'cx')
    if r.dl and tonumber(r.dl) <= now then
      task_assign(r, 's', 'archived', 'aa', now, 'ef', now, 'et', 'DeadlineExceeded',
        'e', 'the lease expired without ack or nack (worker crashed?) and the deadline passed')
      redis.call('ZADD', KEYS[3], now, id)
      unique_release(U, r.uk, id)
      archived = archived + 1
      late = late + 1
    elseif lost >= cap then
      task_assign(r, 's', 'archived', 'aa', now, 'ef', now, 'et', 'LeaseLost',
        'e', 'lease expired ' .. lost .. ' times without ack or nack (worker crashed?)')
      redis.call('ZADD', KEYS[3], now, id)
      unique_release(U, r.uk, id)
      archived = archived + 1
    else
      -- Pending since the lease expired (not since this call noticed): the queue's latency.
      task_assign(r, 's', 'pending', 'na', lost_at)
      if ck then key_push(fk, ck, id, true) else redis.call('RPUSH', KEYS[2], id) end
      returned = returned + 1
    end
    task_save(T, id, r)
  end
end
if late > 0 then
  for _, counter in ipairs({KEYS[5], KEYS[7]}) do
    redis.call('INCRBY', counter, late)
    redis.call('EXPIRE', counter, ARGV[6])
  end
  redis.call('INCRBY', KEYS[6], late)
  redis.call('INCRBY', KEYS[8], late)
end
if (returned > 0 and redis.call('EXISTS', KEYS[4]) == 1)
    or (#expired > 0 and redis.call('EXISTS', KEYS[13]) == 1) then
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_ms = -1
if nxt[2] then next_ms = tonumber(nxt[2]) end
if next_ms >= 0 then
  redis.call('ZADD', KEYS[14], next_ms, ARGV[5])
else
  redis.call('ZREM', KEYS[14], ARGV[5])
end
if archived > 0 then redis.call('ZADD', KEYS[15], 'LT', now, ARGV[5]) end
return {returned, archived, next_ms}
