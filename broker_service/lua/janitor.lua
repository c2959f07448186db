-- janitor: delete COMPLETED tasks past their retention and ARCHIVED tasks past the archive's
-- age limit, and trim the archive to its size cap (oldest first); then re-file the queue in
-- the janitor's due index at the next instant it needs a look, or drop it from the index.
-- KEYS[1] completed zset   KEYS[2] archived zset   KEYS[3] janitor due index
-- KEYS[4] task records hash   KEYS[5] envelopes hash   KEYS[6] unique locks hash
-- KEYS[7] unique expiry zset
-- ARGV[1] now (ms)   ARGV[2] archive cutoff (ms; archived before it are deleted)
-- ARGV[3] archive size cap   ARGV[4] max tasks per call   ARGV[5] queue name
-- Returns: {completed removed, archived removed}
-- include: _task
-- include: _unique
local limit = tonumber(ARGV[4])
local T = {tasks = KEYS[4], env = KEYS[5]}
local U = {locks = KEYS[6], expiry = KEYS[7]}
local function drop(zkey, ids)
  for _, id in ipairs(ids) do
    unique_release(U, (task_fields(T, id, 'uk')), id)
    task_del(T, id)
    redis.call('ZREM', zkey, id)
  end
  return #ids
end
local done = drop(KEYS[1], redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, limit))
local old = drop(KEYS[2], redis.call('ZRANGE', KEYS[2], '-inf', '(' .. ARGV[2], 'BYSCORE', 'LIMIT', 0, limit))
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if excess > 0 then
  old = old + drop(KEYS[2], redis.call('ZRANGE', KEYS[2], 0, math.min(excess, limit) - 1))
end
-- Next look: the earliest completed expiry, the oldest archived task's age limit, or now when
-- the archive is still over its cap (more than one call's worth was due).
local now = tonumber(ARGV[1])
local nxt = -1
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if head[2] then nxt = tonumber(head[2]) end
head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if head[2] then
  local at = tonumber(head[2]) + now - tonumber(ARGV[2]) + 1  -- deleted once strictly older
  if redis.call('ZCARD', KEYS[2]) > tonumber(ARGV[3]) then at = now end
  if nxt < 0 or at < nxt then nxt = at end
end
if nxt >= 0 then
  redis.call('ZADD', KEYS[3], nxt, ARGV[5])
else
  redis.call('ZREM', KEYS[3], ARGV[5])
end
return {done, old}
