-- bulk: one chunk of RunAllTasks / ArchiveAllTasks / DeleteAllTasks: examines at most ARGV[6]
-- tasks of one state's index after the cursor and moves those matching the filter, with the
-- semantics of run_task.lua, archive_task.lua and delete_task.lua (run: PENDING now, retry
-- count kept, leasers woken; archive and delete: unique lock released).
-- KEYS[1] the state's index (pending list or the state's zset)   KEYS[2] pending list
-- KEYS[3] archived zset   KEYS[4] waiting marker
-- ARGV[1] 'run' | 'archive' | 'delete'   ARGV[2] state name   ARGV[3] 'list' | 'zset'
-- ARGV[4] cursor id ('' = start)   ARGV[5] cursor score   ARGV[6] most tasks to examine
-- ARGV[7] now (ms)   ARGV[8] task key prefix   ARGV[9] type ('' = any)
-- ARGV[10] last error type ('' = any)   ARGV[11] enqueued at or before (ms; -1 = any)
-- ARGV[12] notify channel   ARGV[13] queue name
-- KEYS[5] settings hash   KEYS[6] flow hash   KEYS[7] key ring   KEYS[8] key active hash
-- ARGV[14] key-list prefix (run: a task with a concurrency key goes to its key's list)
-- KEYS[9] janitor due index (archive: the queue is filed now, its archive may outgrow limits)
-- Returns: {tasks moved, 1 when the index was walked to its end else 0, cursor id, score}
-- include: _envelope
-- include: _walk
-- include: _flow
local op, state, kind = ARGV[1], ARGV[2], ARGV[3]
local now, prefix = tonumber(ARGV[7]), ARGV[8]
local crit = {id_prefix = '', ttype = ARGV[9], etype = ARGV[10], before = tonumber(ARGV[11]),
  needle = ''}
local ids, aux, skip, done, llen, cpos = index_window(kind, KEYS[1], ARGV[4], ARGV[5],
  tonumber(ARGV[6]))
local cid, cscore = ARGV[4], ARGV[5]
local moved, tombs = 0, 0
local TOMB = '\0bulk'
-- Index writes are gathered and sent in multi-member commands at the end: per task only its
-- hash is read and written (a chunk's time is mostly its calls into Redis).
local gone, runs, archs = {}, {}, {}
local function flush(cmd, key, args)
  for i = 1, #args, 1000 do
    redis.call(cmd, key, unpack(args, i, math.min(i + 999, #args)))
  end
end
for j, id in ipairs(ids) do
  if not skip[j] then
    local tkey = prefix .. id
    local f = redis.call('HMGET', tkey, 's', 'et', 'uk', 'ck')
    if f[1] == state and task_matches(id, tkey, f[2] or '', crit) then
      if kind == 'list' then
        -- A negative index: the window lies near the right end, and LSET seeks from there.
        redis.call('LSET', KEYS[1], aux[j] - llen, TOMB)
        tombs = tombs + 1
      else
        gone[#gone + 1] = id
      end
      if op == 'run' then
        redis.call('HSET', tkey, 's', 'pending', 'na', now)
        redis.call('HDEL', tkey, 'aa')
        if f[4] then
          key_push({settings = KEYS[5], flow = KEYS[6], ring = KEYS[7], kact = KEYS[8],
            kprefix = ARGV[14]}, f[4], id, false)
        else
          runs[#runs + 1] = id
        end
      else
        if f[3] and redis.call('GET', f[3]) == id then redis.call('DEL', f[3]) end
        if op == 'archive' then
          redis.call('HSET', tkey, 's', 'archived', 'aa', now)
          archs[#archs + 1] = now
          archs[#archs + 1] = id
        else
          redis.call('DEL', tkey)
        end
      end
      moved = moved + 1
    else
      cid, cscore = id, aux[j]
      -- (list) its position from the right once this window's tombstones, all to its
      -- right so far (the walk goes right to left), are removed
      if kind == 'list' then cpos = llen - aux[j] - tombs end
    end
  else
    cid, cscore = id, aux[j]
  end
end
if tombs > 0 then
  -- LREM scans from one end until it removed them all: start from the window's nearer end
  -- (a filtered walk leaves the tasks it keeps between the window and the right end).
  if aux[#aux] < llen - 1 - aux[1] then
    redis.call('LREM', KEYS[1], tombs, TOMB)
  else
    redis.call('LREM', KEYS[1], -tombs, TOMB)
  end
end
flush('ZREM', KEYS[1], gone)
-- Oldest first, so that the oldest is leased first (the list's right end is leased first).
flush('LPUSH', KEYS[2], runs)
flush('ZADD', KEYS[3], archs)
if #archs > 0 then redis.call('ZADD', KEYS[9], 'LT', now, ARGV[13]) end
if op == 'run' and moved > 0 and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('PUBLISH', ARGV[12], ARGV[13])
end
if kind == 'list' then cscore = cpos end
return {moved, done and 1 or 0, cid, tostring(cscore)}
