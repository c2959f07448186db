-- queue_stats: one queue's counts and counters, and since when its next PENDING task waits
-- (its `na`, rewritten by every transition into PENDING), in one call (read only), so that
-- the stats of many queues take one pipelined round trip.
-- KEYS[1] paused flag   KEYS[2] pending list   KEYS[3] scheduled   KEYS[4] retry
-- KEYS[5] active   KEYS[6] archived   KEYS[7] completed   KEYS[8] processed today
-- KEYS[9] failed today   KEYS[10] processed total   KEYS[11] failed total
-- KEYS[12] aggregating counter   KEYS[13] flow hash (its kn: PENDING tasks of concurrency keys)
-- KEYS[14] task records hash   KEYS[15] envelopes hash
-- Returns: {paused, pending, scheduled, retry, active, archived, completed, processed today,
--   failed today, processed total, failed total, aggregating, next pending since ms or -1}
-- include: _task
local T = {tasks = KEYS[14], env = KEYS[15]}
local out = {redis.call('EXISTS', KEYS[1]),
  redis.call('LLEN', KEYS[2]) + tonumber(redis.call('HGET', KEYS[13], 'kn') or '0')}
for k = 3, 7 do out[#out + 1] = redis.call('ZCARD', KEYS[k]) end
for k = 8, 12 do out[#out + 1] = tonumber(redis.call('GET', KEYS[k]) or '0') end
local since = -1
local nxt = redis.call('LINDEX', KEYS[2], -1)
if nxt then since = tonumber(task_fields(T, nxt, 'na') or '-1') end
out[#out + 1] = since
return out
