-- bulk: one chunk of RunAllTasks / ArchiveAllTasks / DeleteAllTasks: examines at most ARGV[6]
-- tasks of one state's index after the cursor and moves those matching the filter, with the
-- semantics of run_task.lua, archive_task.lua and delete_task.lua (run: PENDING now, retry
-- count kept, leasers woken; archive and delete: unique lock released).
-- KEYS[1] the state's index (pending list or the state's zset)   KEYS[2] pending list
-- KEYS[3] archived zset   KEYS[4] waiting marker
-- KEYS[5] settings hash   KEYS[6] flow hash   KEYS[7] key ring   KEYS[8] key active hash
-- KEYS[9] janitor due index (archive: the queue is filed now, its archive may outgrow limits)
-- KEYS[10] task records hash   KEYS[11] envelopes hash   KEYS[12] unique locks hash
-- KEYS[13] unique expiry zset   KEYS[14] key pending zset   KEYS[15] key position hash
--   (run: a task with a concurrency key goes to its key's tasks)
-- ARGV[1] 'run' | 'archive' | 'delete'   ARGV[2] state name   ARGV[3] 'list' | 'zset'
-- ARGV[4] cursor id ('' = start)   ARGV[5] cursor score   ARGV[6] most tasks to examine
-- ARGV[7] now (ms)   ARGV[8] type ('' = any)   ARGV[9] last error type ('' = any)
-- ARGV[10] enqueued at or before (ms; -1 = any)   ARGV[11] notify channel   ARGV[12] queue name
-- Returns: {tasks moved, 1 when the index was walked to its end else 0, cursor id, score}
-- include: _task
-- include: _unique
-- include: _envelope
-- include: _walk
-- include: _flow
local op, state, kind = ARGV[1], ARGV[2], ARGV[3]
local now = tonumber(ARGV[7])
local crit = {id_prefix = '', ttype = ARGV[8], etype = ARGV[9], before = tonumber(ARGV[10]),
  needle = ''}
local T = {tasks = KEYS[10], env = KEYS[11]}
local U = {locks = KEYS[12], expiry = KEYS[13]}
local ids, aux, skip, done, llen, cpos = index_window(kind, KEYS[1], ARGV[4], ARGV[5],
  tonumber(ARGV[6]))
local cid, cscore = ARGV[4], ARGV[5]
local moved, tombs = 0, 0
local TOMB = '\0bulk'
-- Index writes are gathered and sent in multi-member commands at the end: per task only its
-- record is read and written (a chunk's time is mostly its calls into Redis).
local gone, runs, archs = {}, {}, {}
local function flush(cmd, key, args)
  for i = 1, #args, 1000 do
    redis.call(cmd, key, unpack(args, i, math.min(i + 999, #args)))
  end
end
for j, id in ipairs(ids) do
  if not skip[j] then
    local r = task_record(T, id)
    if r and r.s == state and task_matches(T, id, r.et or '', crit) then
      if kind == 'list' then
        -- A negative index: the window lies near the right end, and LSET seeks from there.
        redis.call('LSET', KEYS[1], aux[j] - llen, TOMB)
        tombs = tombs + 1
      else
        gone[#gone + 1] = id
      end
      if op == 'run' then
        task_clear(r, 'aa')
        task_save(T, id, task_assign(r, 's', 'pending', 'na', now))
        if r.ck then
          key_push({settings = KEYS[5], flow = KEYS[6], ring = KEYS[7], kact = KEYS[8],
            kpend = KEYS[14], kpos = KEYS[15]}, r.ck, id, false)
        else
          runs[#runs + 1] = id
        end
      else
        unique_release(U, r.uk, id)
        if op == 'archive' then
          task_save(T, id, task_assign(r, 's', 'archived', 'aa', now))
          archs[#archs + 1] = now
          archs[#archs + 1] = id
        else
          task_del(T, id)
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
if #archs > 0 then redis.call('ZADD', KEYS[9], 'LT', now, ARGV[12]) end
if op == 'run' and moved > 0 and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('PUBLISH', ARGV[11], ARGV[12])
end
if kind == 'list' then cscore = cpos end
return {moved, done and 1 or 0, cid, tostring(cscore)}
