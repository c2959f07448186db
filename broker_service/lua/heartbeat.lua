-- heartbeat: extend the leases of one queue that a worker still holds.
-- KEYS[1] active zset, then KEYS[1+i] the task hash of lease i, then the reclaim due index
--   (an override may shorten a lease: the queue is filed at each new expiry, the earliest kept)
-- ARGV[1] now (ms)   ARGV[2] lease duration override (ms; 0 = each lease's own duration)
-- ARGV[3] queue name
-- then per lease i: ARGV[2+2i] task id, ARGV[3+2i] lease token
-- Returns: per lease, the new expiry (ms), negated when an operator asked to cancel the
-- task, or 0 when the lease is lost.
local now = tonumber(ARGV[1])
local override = tonumber(ARGV[2])
local out = {}
local shortest = nil
for i = 1, #KEYS - 2 do
  local tkey = KEYS[1 + i]
  local f = redis.call('HMGET', tkey, 's', 'tk', 'ld', 'cx')
  if f[1] == 'active' and f[2] == ARGV[3 + 2 * i] then
    local dur = override
    if dur == 0 then dur = tonumber(f[3]) end
    local expires = now + dur
    redis.call('HSET', tkey, 'lx', expires)
    redis.call('ZADD', KEYS[1], expires, ARGV[2 + 2 * i])
    if override > 0 and (not shortest or expires < shortest) then shortest = expires end
    if f[4] then out[i] = -expires else out[i] = expires end
  else
    out[i] = 0
  end
end
if shortest then redis.call('ZADD', KEYS[#KEYS], 'LT', shortest, ARGV[3]) end
return out
