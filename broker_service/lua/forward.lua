-- forward: move due SCHEDULED and RETRY tasks of one queue to PENDING.
-- KEYS[1] scheduled zset   KEYS[2] retry zset   KEYS[3] pending list   KEYS[4] waiting marker
-- ARGV[1] now (ms)   ARGV[2] max tasks per set   ARGV[3] task key prefix
-- ARGV[4] notify channel   ARGV[5] queue name
-- KEYS[5] settings hash   KEYS[6] flow hash   KEYS[7] key ring   KEYS[8] key active hash
-- ARGV[6] key-list prefix (a task with a concurrency key goes to its key's list)
-- KEYS[9] forward due index: the queue is re-filed there at its earliest remaining due time,
--   or dropped when none is left
-- include: _flow
-- Returns: {tasks moved, earliest remaining due time ms or -1}
local now = tonumber(ARGV[1])
local fk = {settings = KEYS[5], flow = KEYS[6], ring = KEYS[7], kact = KEYS[8],
  kprefix = ARGV[6]}
local moved = 0
local earliest = -1
for k = 1, 2 do
  local due = redis.call('ZRANGE', KEYS[k], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
  for _, id in ipairs(due) do
    redis.call('ZREM', KEYS[k], id)
    -- 'na' keeps the due time: pending since then (the queue's latency), not since this call.
    local ck = redis.call('HGET', ARGV[3] .. id, 'ck')
    redis.call('HSET', ARGV[3] .. id, 's', 'pending')
    if ck then key_push(fk, ck, id, false) else redis.call('LPUSH', KEYS[3], id) end
    moved = moved + 1
  end
  local nxt = redis.call('ZRANGE', KEYS[k], 0, 0, 'WITHSCORES')
  if nxt[2] then
    local at = tonumber(nxt[2])
    if earliest < 0 or at < earliest then earliest = at end
  end
end
if earliest >= 0 then
  redis.call('ZADD', KEYS[9], earliest, ARGV[5])
else
  redis.call('ZREM', KEYS[9], ARGV[5])
end
if moved > 0 and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return {moved, earliest}
