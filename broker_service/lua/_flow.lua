-- Concurrency-key bookkeeping shared by the scripts that move tasks in and out of PENDING or
-- ACTIVE. `fk` names the queue's keys: settings (hash), flow (hash), ring (list of keys with
-- PENDING tasks and a free slot), kact (hash key -> ACTIVE count), kpend (sorted set of every
-- key's PENDING tasks) and kpos (hash id -> its kpend member).
-- A key's PENDING tasks are the kpend members `key .. '\0' .. <15 hex digits> .. id`, all
-- scored 0, so a lex range over [key\0 .. (key\1 lists them in lease order (a key never holds
-- '\0': validation refuses it). The 15 hex digits are a sequence: a push to the back takes
-- 2^52 + an increasing counter (flow field ks), a push to the front (a reclaimed or requeued
-- task keeps its turn) 2^52 - another increasing counter (kh); both stay within 2^53 (exact
-- in Lua's doubles) for more pushes than a queue will see.
-- Invariant: a key is in the ring when it has PENDING tasks and its ACTIVE count is below the
-- per-key limit; a stale entry (the limit was lowered, an operator removed the tasks) is
-- dropped by the lease script when it comes up.
local KEY_SEQ_MID = 4503599627370496  -- 2^52

local function key_limit(fk)
  local k = tonumber(redis.call('HGET', fk.settings, 'kl') or '1') or 1
  if k < 1 then k = 1 end
  return k
end

-- How many PENDING tasks key `ck` has.
local function key_waiting(fk, ck)
  return redis.call('ZLEXCOUNT', fk.kpend, '[' .. ck .. '\0', '(' .. ck .. '\1')
end

-- A PENDING task of key `ck`: to the back of its key's tasks, or to the front when `at_head`.
local function key_push(fk, ck, id, at_head)
  local seq
  if at_head then
    seq = KEY_SEQ_MID - redis.call('HINCRBY', fk.flow, 'kh', 1)
  else
    seq = KEY_SEQ_MID + redis.call('HINCRBY', fk.flow, 'ks', 1)
  end
  local first = key_waiting(fk, ck) == 0
  local member = ck .. '\0' .. string.format('%015x', seq) .. id
  redis.call('ZADD', fk.kpend, 0, member)
  redis.call('HSET', fk.kpos, id, member)
  redis.call('HINCRBY', fk.flow, 'kn', 1)
  if first and tonumber(redis.call('HGET', fk.kact, ck) or '0') < key_limit(fk) then
    redis.call('RPUSH', fk.ring, ck)
  end
end

-- The next PENDING task of key `ck` leaves its key's tasks (to be leased): its id, or nil.
-- The caller counts it out of kn.
local function key_pop(fk, ck)
  local got = redis.call('ZRANGEBYLEX', fk.kpend, '[' .. ck .. '\0', '(' .. ck .. '\1',
    'LIMIT', 0, 1)
  if not got[1] then return nil end
  local id = string.sub(got[1], #ck + 17)
  redis.call('ZREM', fk.kpend, got[1])
  redis.call('HDEL', fk.kpos, id)
  return id
end

-- A task of key `ck` stops being ACTIVE: its slot frees, and the key rejoins the ring when
-- it was at its limit with tasks waiting. Call before key_push for the same task.
local function key_release(fk, ck)
  local act = redis.call('HINCRBY', fk.kact, ck, -1)
  if act <= 0 then
    redis.call('HDEL', fk.kact, ck)
    act = 0
  end
  if act == key_limit(fk) - 1 and key_waiting(fk, ck) > 0 then
    redis.call('RPUSH', fk.ring, ck)
  end
end

-- A PENDING task leaves its key's tasks without being leased (an operator archived or deleted
-- it). Needs fk.flow, fk.kpend and fk.kpos only.
local function key_unlist(fk, id)
  local member = redis.call('HGET', fk.kpos, id)
  if member then
    redis.call('HDEL', fk.kpos, id)
    if redis.call('ZREM', fk.kpend, member) > 0 then
      redis.call('HINCRBY', fk.flow, 'kn', -1)
    end
  end
end
