-- forward: move due SCHEDULED and RETRY tasks of one queue to PENDING.
-- KEYS[1] scheduled zset   KEYS[2] retry zset   KEYS[3] pending list   KEYS[4] waiting marker
-- KEYS[5] settings hash   KEYS[6] flow hash   KEYS[7] key ring   KEYS[8] key active hash
-- KEYS[9] forward due index: the queue is re-filed there at its earliest remaining due time,
--   or dropped when none is left
-- KEYS[10] task records hash   KEYS[11] envelopes hash   KEYS[12] key pending zset
-- KEYS[13] key position hash (a task with a concurrency key goes to its key's tasks)
-- ARGV[1] now (ms)   ARGV[2] max tasks per set   ARGV[3] notify channel   ARGV[4] queue name
-- include: _task
-- include: _flow
-- Returns: {tasks moved, earliest remaining due time ms or -1}
local now = tonumber(ARGV[1])
local fk = {settings = KEYS[5], flow = KEYS[6], ring = KEYS[7], kact = KEYS[8],
  kpend = KEYS[12], kpos = KEYS[13]}
local T = {tasks = KEYS[10], env = KEYS[11]}
local moved = 0
local earliest = -1
for k = 1, 2 do
  local due = redis.call('ZRANGE', KEYS[k], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
  for _, id in ipairs(due) do
    redis.call('ZREM', KEYS[k], id)
    -- 'na' keeps the due time: pending since then (the queue's latency), not since this call.
    local r = task_record(T, id)
    local ck = r and r.ck
    if r then
      r.s = 'pending'
      task_save(T, id, r)
    end
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
  redis.call('ZADD', KEYS[9], earliest, ARGV[4])
else
  redis.call('ZREM', KEYS[9], ARGV[4])
end
if moved > 0 and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return {moved, earliest}
