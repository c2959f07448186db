-- enqueue: add tasks to one queue (PENDING, or SCHEDULED when due later).
-- KEYS[1] pending list        KEYS[2] scheduled zset       KEYS[3] waiting marker
-- then per task i (1-based):  KEYS[2+2i] task hash          KEYS[3+2i] unique lock key
--                             (the task key again when the task has no unique lock)
-- ARGV[1] now (ms)   ARGV[2] notify channel   ARGV[3] queue name
-- then per task i, 7 values from ARGV[4+7(i-1)]:
--   id, envelope bytes, process_at ms (0 = now), max_retry, unique_ttl ms (0 = none),
--   retention ms, group
-- Returns: one status per task: 0 enqueued, 1 task id conflict, 2 duplicate unique task.
local now = tonumber(ARGV[1])
local n = (#KEYS - 3) / 2
local statuses = {}
local added = 0
for i = 1, n do
  local tkey = KEYS[2 + 2 * i]
  local ukey = KEYS[3 + 2 * i]
  local a = 4 + 7 * (i - 1)
  local id, at, ttl = ARGV[a], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 4])
  local status = 0
  if redis.call('EXISTS', tkey) == 1 then
    status = 1
  elseif ttl > 0 and not redis.call('SET', ukey, id, 'NX', 'PX', ttl) then
    status = 2
  end
  if status == 0 then
    local due = at
    if due < now then due = now end
    redis.call('HSET', tkey, 'b', ARGV[a + 1], 'mr', ARGV[a + 3], 'na', due)
    if ttl > 0 then redis.call('HSET', tkey, 'uk', ukey, 'ut', ttl) end
    if ARGV[a + 5] ~= '0' then redis.call('HSET', tkey, 'rt', ARGV[a + 5]) end
    if ARGV[a + 6] ~= '' then redis.call('HSET', tkey, 'g', ARGV[a + 6]) end
    if at > now then
      redis.call('HSET', tkey, 's', 'scheduled')
      redis.call('ZADD', KEYS[2], at, id)
    else
      redis.call('HSET', tkey, 's', 'pending')
      redis.call('LPUSH', KEYS[1], id)
    end
    added = added + 1
  end
  statuses[i] = status
end
if added > 0 and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return statuses
