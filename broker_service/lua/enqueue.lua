-- enqueue: add tasks to one queue (PENDING, or SCHEDULED when due later).
-- A task with a concurrency key waits in its key's PENDING set instead of the pending list
-- (see _flow.lua); its record keeps the key (ck).
-- KEYS[1] pending list   KEYS[2] scheduled zset   KEYS[3] waiting marker
-- KEYS[4] task records hash   KEYS[5] envelopes hash   KEYS[6] unique locks hash
-- KEYS[7] unique expiry zset   KEYS[8] settings hash   KEYS[9] flow hash   KEYS[10] key ring
-- KEYS[11] key active hash   KEYS[12] key pending zset   KEYS[13] key position hash
-- KEYS[14] forward due index (a SCHEDULED task files the queue at its instant, the earliest kept)
-- ARGV[1] now (ms)   ARGV[2] notify channel   ARGV[3] queue name   ARGV[4] n (task count)
-- ARGV[5] '1' when some task has a concurrency key, else '0'
-- then per task i: ARGV[4+2i] meta, ARGV[5+2i] envelope bytes, where meta is
--   "id<TAB>process_at ms (0 = now)<TAB>max_retry<TAB>unique_ttl ms (0 = none)<TAB>
--    retention ms<TAB>unique lock digest ('' = none)<TAB>deadline ms (0 = none)<TAB>group
--    [<TAB>concurrency key]"
-- (one string per task instead of seven arguments: argument encoding dominates big batches)
-- The caller validates every value (whole non-negative numbers), so the script cannot fail
-- half-way: it writes all of its tasks' outcomes or, refused before its first write, nothing.
-- Returns: one status per task: 0 enqueued, 1 task id conflict, 2 duplicate unique task.
-- include: _task
-- include: _unique
-- include: _flow
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[4])
local T = {tasks = KEYS[4], env = KEYS[5]}
local U = {locks = KEYS[6], expiry = KEYS[7]}
local fk = {settings = KEYS[8], flow = KEYS[9], ring = KEYS[10], kact = KEYS[11],
  kpend = KEYS[12], kpos = KEYS[13]}
if ARGV[5] == '1' then
  redis.call('HSET', fk.settings, 'kx', 1)  -- the lease script looks at key tasks from now on
end
local statuses = {}
local added = 0
local pushed = {}  -- ids for the pending list, pushed together at the end (same order)
for i = 1, n do
  local id, at, mr, ttl, rt, uk, dl, group, ck = string.match(ARGV[4 + 2 * i],
    '^([^\t]*)\t(%d+)\t(%d+)\t(%d+)\t(%d+)\t([^\t]*)\t(%d+)\t([^\t]*)\t?(.*)$')
  at, ttl = tonumber(at), tonumber(ttl)
  local status = 0
  if task_exists(T, id) then
    status = 1
  elseif uk ~= '' and not unique_take(U, uk, id, now, ttl) then
    status = 2
  end
  if status == 0 then
    local due = at
    if due < now then due = now end
    local state = 'pending'
    if at > now then state = 'scheduled' end
    local r = {s = state, mr = mr, na = task_str(due)}
    if uk ~= '' then r.uk, r.ut = uk, task_str(ttl) end
    if rt ~= '0' then r.rt = rt end
    if dl ~= '0' then r.dl = dl end
    if group ~= '' then r.g = group end
    if ck ~= '' then r.ck = ck end
    task_save(T, id, r)
    task_put_envelope(T, id, ARGV[5 + 2 * i])
    if at > now then
      redis.call('ZADD', KEYS[2], at, id)
      redis.call('ZADD', KEYS[14], 'LT', at, ARGV[3])
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
