-- enqueue: add tasks to one queue (PENDING, or SCHEDULED when due later).
-- A task with a concurrency key waits in its key's list instead of the pending list (see
-- _flow.lua); its hash records the key (ck).
-- KEYS[1] pending list   KEYS[2] scheduled zset   KEYS[3] waiting marker
-- KEYS[3+i] task hash of task i (i = 1..n), then the unique lock keys of the tasks that have
-- one, then (when some task has a concurrency key) the settings hash, flow hash, key ring and
-- key active hash, at the indexes ARGV[5] .. ARGV[5] + 3; the last key, KEYS[#KEYS], is the
-- forward due index (a SCHEDULED task files the queue at its instant, the earliest kept)
-- ARGV[1] now (ms)   ARGV[2] notify channel   ARGV[3] queue name   ARGV[4] n (task count)
-- ARGV[5] index in KEYS of the settings hash (0 = no task has a key)   ARGV[6] key-list prefix
-- then per task i: ARGV[5+2i] meta, ARGV[6+2i] envelope bytes, where meta is
--   "id<TAB>process_at ms (0 = now)<TAB>max_retry<TAB>unique_ttl ms (0 = none)<TAB>
--    retention ms<TAB>unique lock index in KEYS (0 = none)<TAB>deadline ms (0 = none)<TAB>group
--    [<TAB>concurrency key]"
-- (one string per task instead of seven arguments: argument encoding dominates big batches)
-- The caller validates every value (whole non-negative numbers), so the script cannot fail
-- half-way: it writes all of its tasks' outcomes or, refused before its first write, nothing.
-- Returns: one status per task: 0 enqueued, 1 task id conflict, 2 duplicate unique task.
-- include: _flow
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[4])
local fi = tonumber(ARGV[5])
local fk
if fi > 0 then
  fk = {settings = KEYS[fi], flow = KEYS[fi + 1], ring = KEYS[fi + 2], kact = KEYS[fi + 3],
    kprefix = ARGV[6]}
  redis.call('HSET', fk.settings, 'kx', 1)  -- the lease script looks at key lists from now on
end
local statuses = {}
local added = 0
local pushed = {}  -- ids for the pending list, pushed together at the end (same order)
for i = 1, n do
  local tkey = KEYS[3 + i]
  local id, at, mr, ttl, rt, ui, dl, group, ck = string.match(ARGV[5 + 2 * i],
    '^([^\t]*)\t(%d+)\t(%d+)\t(%d+)\t(%d+)\t(%d+)\t(%d+)\t([^\t]*)\t?(.*)$')
  at, ttl, ui = tonumber(at), tonumber(ttl), tonumber(ui)
  local status = 0
  if redis.call('EXISTS', tkey) == 1 then
    status = 1
  elseif ui > 0 and not redis.call('SET', KEYS[ui], id, 'NX', 'PX', ttl) then
    status = 2
  end
  if status == 0 then
    local due = at
    if due < now then due = now end
    local state = 'pending'
    if at > now then state = 'scheduled' end
    redis.call('HSET', tkey, 'b', ARGV[6 + 2 * i], 'mr', mr, 'na', due, 's', state)
    if ui > 0 then redis.call('HSET', tkey, 'uk', KEYS[ui], 'ut', ttl) end
    if rt ~= '0' then redis.call('HSET', tkey, 'rt', rt) end
    if dl ~= '0' then redis.call('HSET', tkey, 'dl', dl) end
    if group ~= '' then redis.call('HSET', tkey, 'g', group) end
    if ck ~= '' then redis.call('HSET', tkey, 'ck', ck) end
    if at > now then
      redis.call('ZADD', KEYS[2], at, id)
      redis.call('ZADD', KEYS[#KEYS], 'LT', at, ARGV[3])
    elseif ck ~= '' then
      key_push(fk, ck, id, false)
    else
      pushed[#pushed + 1] = id
    end
    added = added + 1
  end
  statuses[i] = status
end
for first = 1, #pushed, 1000 do  -- unpack's limit on arguments
  redis.call('LPUSH', KEYS[1], unpack(pushed, first, math.min(first + 999, #pushed)))
end
if added > 0 and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return statuses
