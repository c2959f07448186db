-- reclaim: return tasks whose lease expired to the head of PENDING without counting an
-- attempt; a task whose leases expired lease_lost_cap times is archived as poison, and one
-- whose deadline has passed is archived as DeadlineExceeded (counted as processed and failed).
-- KEYS[1] active zset   KEYS[2] pending list   KEYS[3] archived zset   KEYS[4] waiting marker
-- KEYS[5] processed today   KEYS[6] processed total   KEYS[7] failed today
-- KEYS[8] failed total   KEYS[9] settings hash   KEYS[10] flow hash   KEYS[11] key ring
-- KEYS[12] key active hash   KEYS[13] held marker (freed slots wake Leases held by a limit)
-- ARGV[1] now (ms)   ARGV[2] max tasks to reclaim   ARGV[3] lease-lost cap
-- ARGV[4] task key prefix   ARGV[5] notify channel   ARGV[6] queue name
-- ARGV[7] TTL of daily counters (s)   ARGV[8] key-list prefix
-- KEYS[14] reclaim due index: the queue is re-filed there at its next lease expiry, or
--   dropped when no lease is left   KEYS[15] janitor due index (archiving files the queue now)
-- A task of a concurrency key frees its key's slot and returns to the front of its key's list.
-- Returns: {tasks returned to pending, tasks archived, next lease expiry ms or -1}
-- include: _flow
local now = tonumber(ARGV[1])
local fk = {settings = KEYS[9], flow = KEYS[10], ring = KEYS[11], kact = KEYS[12],
  kprefix = ARGV[8]}
local cap = tonumber(ARGV[3])
local expired = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]),
  'WITHSCORES')
local returned, archived, late = 0, 0, 0
for e = 1, #expired, 2 do
  local id, lost_at = expired[e], expired[e + 1]
  local tkey = ARGV[4] .. id
  redis.call('ZREM', KEYS[1], id)
  if redis.call('EXISTS', tkey) == 1 then
    local lost = redis.call('HINCRBY', tkey, 'll', 1)
    local ck = redis.call('HGET', tkey, 'ck')
    if ck then key_release(fk, ck) end
    redis.call('HDEL', tkey, 'w', 'lx', 'tk', 'ld', 'cx')
    local dl = redis.call('HGET', tkey, 'dl')
    if dl and tonumber(dl) <= now then
      redis.call('HSET', tkey, 's', 'archived', 'aa', now, 'ef', now, 'et', 'DeadlineExceeded',
        'e', 'the lease expired without ack or nack (worker crashed?) and the deadline passed')
      redis.call('ZADD', KEYS[3], now, id)
      local uk = redis.call('HGET', tkey, 'uk')
      if uk and redis.call('GET', uk) == id then redis.call('DEL', uk) end
      archived = archived + 1
      late = late + 1
    elseif lost >= cap then
      redis.call('HSET', tkey, 's', 'archived', 'aa', now, 'ef', now, 'et', 'LeaseLost',
        'e', 'lease expired ' .. lost .. ' times without ack or nack (worker crashed?)')
      redis.call('ZADD', KEYS[3], now, id)
      local uk = redis.call('HGET', tkey, 'uk')
      if uk and redis.call('GET', uk) == id then redis.call('DEL', uk) end
      archived = archived + 1
    else
      -- Pending since the lease expired (not since this call noticed): the queue's latency.
      redis.call('HSET', tkey, 's', 'pending', 'na', lost_at)
      if ck then key_push(fk, ck, id, true) else redis.call('RPUSH', KEYS[2], id) end
      returned = returned + 1
    end
  end
end
if late > 0 then
  for _, counter in ipairs({KEYS[5], KEYS[7]}) do
    redis.call('INCRBY', counter, late)
    redis.call('EXPIRE', counter, ARGV[7])
  end
  redis.call('INCRBY', KEYS[6], late)
  redis.call('INCRBY', KEYS[8], late)
end
if (returned > 0 and redis.call('EXISTS', KEYS[4]) == 1)
    or (#expired > 0 and redis.call('EXISTS', KEYS[13]) == 1) then
  redis.call('PUBLISH', ARGV[5], ARGV[6])
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_ms = -1
if nxt[2] then next_ms = tonumber(nxt[2]) end
if next_ms >= 0 then
  redis.call('ZADD', KEYS[14], next_ms, ARGV[6])
else
  redis.call('ZREM', KEYS[14], ARGV[6])
end
if archived > 0 then redis.call('ZADD', KEYS[15], 'LT', now, ARGV[6]) end
return {returned, archived, next_ms}
