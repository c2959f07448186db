-- ack: settle succeeded tasks of one queue: COMPLETED with their result when they have a
-- retention, else deleted; their unique locks are released. A settled lease leaves a marker
-- (its token, until the lease would have expired plus a slack) so that a repeated Ack with the
-- same token is answered "already settled" instead of "lease lost".
-- A settled task frees its concurrency key's slot (_flow.lua); while a Lease is held back by a
-- limit of the queue (the held marker), the freed slots publish a wake-up.
-- KEYS[1] active zset   KEYS[2] completed zset   KEYS[3] processed today   KEYS[4] processed total
-- KEYS[5] settings hash   KEYS[6] flow hash   KEYS[7] key ring   KEYS[8] key active hash
-- KEYS[9] held marker   KEYS[10] janitor due index (a completed task files the queue at its
--   expiry, the earliest kept)
-- then per item i: KEYS[9+2i] the task hash, KEYS[10+2i] the task's settled marker
-- ARGV[1] now (ms)   ARGV[2] TTL of daily counters (s)   ARGV[3] settled-marker slack after the lease expiry (ms)
-- ARGV[4] key-list prefix   ARGV[5] notify channel   ARGV[6] queue name
-- then per item i: ARGV[4+3i] task id, ARGV[5+3i] lease token, ARGV[6+3i] result
-- include: _flow
-- Returns: per item, 0 settled, 1 lease lost, 2 task not found, 3 already settled by this token.
local now = tonumber(ARGV[1])
local out = {}
local done = 0
local fk = {settings = KEYS[5], flow = KEYS[6], ring = KEYS[7], kact = KEYS[8],
  kprefix = ARGV[4]}
for i = 1, (#KEYS - 10) / 2 do
  local tkey, skey = KEYS[9 + 2 * i], KEYS[10 + 2 * i]
  local id, token = ARGV[4 + 3 * i], ARGV[5 + 3 * i]
  local f = redis.call('HMGET', tkey, 's', 'tk', 'rt', 'uk', 'lx', 'ck')
  if f[1] == 'active' and f[2] == token then
    redis.call('ZREM', KEYS[1], id)
    if f[6] then key_release(fk, f[6]) end
    if f[4] and redis.call('GET', f[4]) == id then redis.call('DEL', f[4]) end
    local retention = tonumber(f[3] or '0')
    if retention > 0 then
      local expires = now + retention
      redis.call('HDEL', tkey, 'w', 'lx', 'tk', 'ld', 'cx')
      redis.call('HSET', tkey, 's', 'completed', 'ca', now, 'xa', expires, 'res', ARGV[6 + 3 * i])
      redis.call('ZADD', KEYS[2], expires, id)
      redis.call('ZADD', KEYS[10], 'LT', expires, ARGV[6])
    else
      redis.call('DEL', tkey)
    end
    local left = math.max(tonumber(f[5] or now) - now, 0)
    redis.call('SET', skey, token, 'PX', left + tonumber(ARGV[3]))
    done = done + 1
    out[i] = 0
  elseif redis.call('GET', skey) == token then
    out[i] = 3
  elseif not f[1] then
    out[i] = 2
  else
    out[i] = 1
  end
end
if done > 0 then
  redis.call('INCRBY', KEYS[3], done)
  redis.call('EXPIRE', KEYS[3], ARGV[2])
  redis.call('INCRBY', KEYS[4], done)
  if redis.call('EXISTS', KEYS[9]) == 1 then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
end
return out
