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
-- KEYS[11] task records hash   KEYS[12] envelopes hash   KEYS[13] unique locks hash
-- KEYS[14] unique expiry zset   KEYS[15] key pending zset   KEYS[16] key position hash
-- then per item i: KEYS[16+i] the task's settled marker
-- ARGV[1] now (ms)   ARGV[2] TTL of daily counters (s)
-- ARGV[3] settled-marker slack after the lease expiry (ms)   ARGV[4] notify channel
-- ARGV[5] queue name
-- then per item i: ARGV[3+3i] task id, ARGV[4+3i] lease token, ARGV[5+3i] result
-- include: _task
-- include: _unique
-- include: _flow
-- Returns: per item, 0 settled, 1 lease lost, 2 task not found, 3 already settled by this token.
local now = tonumber(ARGV[1])
local out = {}
local done = 0
local fk = {settings = KEYS[5], flow = KEYS[6], ring = KEYS[7], kact = KEYS[8],
  kpend = KEYS[15], kpos = KEYS[16]}
local T = {tasks = KEYS[11], env = KEYS[12]}
local U = {locks = KEYS[13], expiry = KEYS[14]}
for i = 1, #KEYS - 16 do
  local skey = KEYS[16 + i]
  local id, token = ARGV[3 + 3 * i], ARGV[4 + 3 * i]
  local r = task_record(T, id)
  if r and r.s == 'active' and r.tk == token then
    local lx = r.lx
    redis.call('ZREM', KEYS[1], id)
    if r.ck then key_release(fk, r.ck) end
    unique_release(U, r.uk, id)
    local retention = tonumber(r.rt or '0')
    if retention > 0 then
      local expires = now + retention
      task_clear(r, 'w', 'lx', 'tk', 'ld', 'cx')
      task_save(T, id, task_assign(r, 's', 'completed', 'ca', now, 'xa', expires,
        'res', ARGV[5 + 3 * i]))
      redis.call('ZADD', KEYS[2], expires, id)
      redis.call('ZADD', KEYS[10], 'LT', expires, ARGV[5])
    else
      task_del(T, id)
    end
    local left = math.max(tonumber(lx or now) - now, 0)
    redis.call('SET', skey, token, 'PX', left + tonumber(ARGV[3]))
    done = done + 1
    out[i] = 0
  elseif redis.call('GET', skey) == token then
    out[i] = 3
  elseif not r then
    out[i] = 2
  else
    out[i] = 1
  end
end
if done > 0 then
  redis.call('INCRBY', KEYS[3], done)
  redis.call('EXPIRE', KEYS[3], ARGV[2])
  redis.call('INCRBY', KEYS[4], done)
  if redis.call('EXISTS', KEYS[9]) == 1 then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
end
return out
