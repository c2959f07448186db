-- worker_touch: record that a worker called (Lease or Heartbeat) and answer its command.
-- A worker's registration is one hash that expires `ttl` after its latest recorded call; the
-- index of worker ids is scored by that call and trimmed here, so nothing has to scan for
-- dead workers. A call whose meta names another process (host, pid or start time differ)
-- starts a new registration: the old one's command and first-seen time are dropped.
-- KEYS[1] worker hash   KEYS[2] worker index zset
-- ARGV[1] now (ms)   ARGV[2] ttl (ms)   ARGV[3] worker id
-- ARGV[4] '1' when the call carried meta, then ARGV[5] host, ARGV[6] pid, ARGV[7] concurrency,
--   ARGV[8] started at (ms, '' when not sent), ARGV[9] sdk
-- ARGV[10] '1' when the call was a Lease, then ARGV[11] queues (JSON [[name, weight], ...]),
--   ARGV[12] strict ('1' / '0')
-- Returns: the worker's command ('' when none).
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  local old = redis.call('HMGET', KEYS[1], 'h', 'p', 'st')
  if old[2] and (old[1] ~= ARGV[5] or old[2] ~= ARGV[6] or (old[3] or '') ~= ARGV[8]) then
    redis.call('DEL', KEYS[1])
  end
end
redis.call('HSETNX', KEYS[1], 'fs', now)
redis.call('HSET', KEYS[1], 'ls', now)
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'h', ARGV[5], 'p', ARGV[6], 'n', ARGV[7], 'st', ARGV[8],
    'sdk', ARGV[9])
end
if ARGV[10] == '1' then
  redis.call('HSET', KEYS[1], 'q', ARGV[11], 'x', ARGV[12])
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - ttl))
redis.call('PEXPIRE', KEYS[2], ttl)
return redis.call('HGET', KEYS[1], 'c') or ''
