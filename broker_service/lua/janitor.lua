-- janitor: delete COMPLETED tasks past their retention and ARCHIVED tasks past the archive's
-- age limit, and trim the archive to its size cap (oldest first).
-- KEYS[1] completed zset   KEYS[2] archived zset
-- ARGV[1] now (ms)   ARGV[2] archive cutoff (ms; archived before it are deleted)
-- ARGV[3] archive size cap   ARGV[4] max tasks per call   ARGV[5] task key prefix
-- Returns: {completed removed, archived removed}
local limit = tonumber(ARGV[4])
local function drop(zkey, ids)
  for _, id in ipairs(ids) do
    local tkey = ARGV[5] .. id
    local uk = redis.call('HGET', tkey, 'uk')
    if uk and redis.call('GET', uk) == id then redis.call('DEL', uk) end
    redis.call('DEL', tkey)
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
return {done, old}
