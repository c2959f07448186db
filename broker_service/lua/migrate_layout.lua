-- migrate_layout: one chunk of the one-time move of a queue's data from layout 1 (a hash per
-- task, a string per unique lock, a list per concurrency key) to layout 2 (see keys.py).
-- Idempotent: an old key is deleted in the step that moves it, so a re-run skips it.
-- ARGV[1] mode:
--   'tasks': KEYS[1] task records hash   KEYS[2] envelopes hash, then per task i: KEYS[2+i]
--     its layout-1 hash; ARGV[1+i] its id; ARGV[#ARGV] the layout-1 unique-lock key prefix
--     (a record's 'uk' held the lock's key name: it becomes the digest that follows the prefix)
--   'locks': KEYS[1] unique locks hash   KEYS[2] unique expiry zset, then per lock i: KEYS[2+i]
--     its layout-1 string (value: holder id, TTL: the lock's rest); ARGV[1+i] its digest
--   'keylists': KEYS[1] flow hash   KEYS[2] key pending zset   KEYS[3] key position hash, then
--     per key i: KEYS[3+i] its layout-1 list (oldest at the right); ARGV[1+i] the key. Tasks
--     keep their order; the flow hash's kn and the key ring already count them.
-- Returns: how many old keys were moved.
local mode = ARGV[1]
local moved = 0
if mode == 'tasks' then
  local uprefix = ARGV[#ARGV]
  for i = 1, #KEYS - 2 do
    local old, id = KEYS[2 + i], ARGV[1 + i]
    local flat = redis.call('HGETALL', old)
    if #flat > 0 then
      local r, env = {}, nil
      for j = 1, #flat, 2 do
        if flat[j] == 'b' then env = flat[j + 1] else r[flat[j]] = flat[j + 1] end
      end
      if r.uk and string.sub(r.uk, 1, #uprefix) == uprefix then
        r.uk = string.sub(r.uk, #uprefix + 1)
      end
      if next(r) == nil then r.s = '' end  -- an empty table would pack as an array
      redis.call('HSET', KEYS[1], id, cmsgpack.pack(r))
      if env then redis.call('HSET', KEYS[2], id, env) end
      redis.call('DEL', old)
      moved = moved + 1
    end
  end
elseif mode == 'locks' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for i = 1, #KEYS - 2 do
    local old, digest = KEYS[2 + i], ARGV[1 + i]
    local holder = redis.call('GET', old)
    local ttl = redis.call('PTTL', old)
    if holder and ttl > 0 then
      redis.call('HSET', KEYS[1], digest, holder)
      redis.call('ZADD', KEYS[2], now + ttl, digest)
    end
    if holder then moved = moved + 1 end
    redis.call('DEL', old)
  end
elseif mode == 'keylists' then
  local mid = 4503599627370496  -- 2^52, as _flow.lua
  for i = 1, #KEYS - 3 do
    local old, ck = KEYS[3 + i], ARGV[1 + i]
    local ids = redis.call('LRANGE', old, 0, -1)
    for j = #ids, 1, -1 do
      local seq = mid + redis.call('HINCRBY', KEYS[1], 'ks', 1)
      local member = ck .. '\0' .. string.format('%015x', seq) .. ids[j]
      redis.call('ZADD', KEYS[2], 0, member)
      redis.call('HSET', KEYS[3], ids[j], member)
    end
    if #ids > 0 then moved = moved + 1 end
    redis.call('DEL', old)
  end
end
return moved
