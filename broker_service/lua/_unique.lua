-- Unique locks (included where a script says "-- include: _unique"). `U = {locks = <hash
-- digest -> holder task id>, expiry = <zset digest scored by expiry ms>}`, both in KEYS. A lock
-- is held while its expiry is in the future; a task record's 'uk' holds the digest. Expired
-- entries are not removed when they expire: taking a lock drops up to 16 of them, so stale
-- locks do not pile up while tasks keep taking locks.
local UNIQUE_SWEEP = 16

-- Take the lock `digest` for task `id` until now + ttl (ms); false when another holds it.
local function unique_take(U, digest, id, now, ttl)
  local exp = redis.call('ZSCORE', U.expiry, digest)
  if exp and tonumber(exp) > now then return false end
  local stale = redis.call('ZRANGE', U.expiry, '-inf', now, 'BYSCORE', 'LIMIT', 0, UNIQUE_SWEEP)
  if #stale > 0 then
    redis.call('ZREM', U.expiry, unpack(stale))
    redis.call('HDEL', U.locks, unpack(stale))
  end
  redis.call('HSET', U.locks, digest, id)
  redis.call('ZADD', U.expiry, now + ttl, digest)
  return true
end

-- Release the lock `digest` (nil: none) when task `id` holds it.
local function unique_release(U, digest, id)
  if digest and redis.call('HGET', U.locks, digest) == id then
    redis.call('HDEL', U.locks, digest)
    redis.call('ZREM', U.expiry, digest)
  end
end
