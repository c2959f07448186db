-- Concurrency-key bookkeeping shared by the scripts that move tasks in and out of PENDING or
-- ACTIVE. `fk` names the queue's keys: settings (hash), flow (hash), ring (list of keys with
-- PENDING tasks and a free slot), kact (hash key -> ACTIVE count), kprefix (a key's PENDING
-- list is kprefix .. key). Invariant: a key is in the ring when its list is non-empty and its
-- ACTIVE count is below the per-key limit; a stale entry (the limit was lowered, an operator
-- emptied the list) is dropped by the lease script when it comes up.
local function key_limit(fk)
  local k = tonumber(redis.call('HGET', fk.settings, 'kl') or '1') or 1
  if k < 1 then k = 1 end
  return k
end

-- A PENDING task of key `ck`: to the back of its list (the next to lease is at the right end),
-- or to the front when `at_head` (a reclaimed or requeued task keeps its turn).
local function key_push(fk, ck, id, at_head)
  local list = fk.kprefix .. ck
  local n
  if at_head then n = redis.call('RPUSH', list, id) else n = redis.call('LPUSH', list, id) end
  redis.call('HINCRBY', fk.flow, 'kn', 1)
  if n == 1 and tonumber(redis.call('HGET', fk.kact, ck) or '0') < key_limit(fk) then
    redis.call('RPUSH', fk.ring, ck)
  end
end

-- A task of key `ck` stops being ACTIVE: its slot frees, and the key rejoins the ring when
-- it was at its limit with tasks waiting. Call before key_push for the same task.
local function key_release(fk, ck)
  local act = redis.call('HINCRBY', fk.kact, ck, -1)
  if act <= 0 then
    redis.call('HDEL', fk.kact, ck)
    act = 0
  end
  if act == key_limit(fk) - 1 and redis.call('LLEN', fk.kprefix .. ck) > 0 then
    redis.call('RPUSH', fk.ring, ck)
  end
end

-- A PENDING task leaves its list without being leased (an operator archived or deleted it).
local function key_unlist(fk, ck, id)
  if redis.call('LREM', fk.kprefix .. ck, 1, id) > 0 then
    redis.call('HINCRBY', fk.flow, 'kn', -1)
  end
end
