-- group_join: add grouped tasks to their groups (AGGREGATING). A group that reaches the queue's
-- max size is flushed at once, in this script, into one PENDING task (see group_flush.lua).
-- KEYS[1] groups zset (group id -> size)   KEYS[2] due zset (group id -> flush instant)
-- KEYS[3] aggregating counter   KEYS[4] pending list   KEYS[5] waiting marker
-- KEYS[6] group times hash   KEYS[7] queue settings hash
-- KEYS[8] task records hash   KEYS[9] envelopes hash
-- then per task i (i = 1..n): KEYS[8+2i] group's member list, KEYS[9+2i] group's info hash
-- ARGV[1] now (ms)   ARGV[2] notify channel   ARGV[3] queue name
-- ARGV[4] n   ARGV[5] default grace (ms)   ARGV[6] default max delay (ms)
-- ARGV[7] default max size   ARGV[8] m, the number of distinct bases
-- ARGV[9] most bytes of members in one flushed task: a member that would take its group past
--   it flushes the group first and starts the next one (a flushed task must fit a Lease answer)
-- ARGV[10] most members this script flushes for reaching max size: a group that fills past
--   it is made due now and left to the aggregator, so that a batch filling many groups at once
--   cannot hold Redis for long (such a group may take the rest of the batch's members for it)
-- ARGV[10+j] (j = 1..m) a base: the envelope of a flushed task without group, id, enqueued_at
--   and members (shared by every group of a type with the same options: sent once)
-- then per task i: ARGV[10+m+i] "id<TAB>group id<TAB>group key<TAB>max_retry<TAB>retention ms
--   <TAB>deadline ms (0 = none)<TAB>base index j<TAB>" followed by the member's GroupMember
--   bytes (one argument per task: argument encoding dominates big batches)
-- A waiting member's envelope is its GroupMember (it has no envelope of its own) and its
-- record keeps its group id in 'gi'.
-- The flushed task's id is 'g-' .. sha1(group id, first member id, first join time): the
-- same flush always makes the same id.
-- Returns: {statuses (0 joined, 1 task id conflict), earliest flush instant of a group created
-- or made due here (-1 none), groups flushed here}
local now = tonumber(ARGV[1])
local T = {tasks = KEYS[8], env = KEYS[9]}

-- include: _task
-- include: _group_flush

local s = redis.call('HMGET', KEYS[7], 'gp', 'md', 'ms')
local grace = tonumber(s[1] or ARGV[5])
local max_delay = tonumber(s[2] or ARGV[6])
local max_size = tonumber(s[3] or ARGV[7])
local n = tonumber(ARGV[4])
local m = tonumber(ARGV[8])
local max_bytes = tonumber(ARGV[9])
local inline_budget = tonumber(ARGV[10])
local inline_flushed = 0
local statuses = {}
local earliest = -1
local flushed = 0
local joined = 0
local metas, fields, seen = {}, {}, {}
for i = 1, n do
  local meta = {string.match(ARGV[10 + m + i],
    '^([^\t]*)\t([^\t]*)\t([^\t]*)\t(%d+)\t(%d+)\t(%d+)\t(%d+)\t(.*)$')}
  metas[i] = meta
  if not seen[meta[2]] then
    seen[meta[2]] = true
    fields[#fields + 1] = 'f:' .. meta[2]
    fields[#fields + 1] = 'b:' .. meta[2]
  end
end
-- The groups' first-join instants and member bytes, read once; the indexes' new scores and
-- the groups' times and bytes written once at the end (a command per join was most of the
-- script's time).
local firsts, bytes = {}, {}
for i = 1, #fields, 1000 do
  local values = redis.call('HMGET', KEYS[6], unpack(fields, i, math.min(i + 999, #fields)))
  for j = 1, #values, 2 do
    local gid = string.sub(fields[i + j - 1], 3)
    if values[j] then firsts[gid] = tonumber(values[j]) end
    bytes[gid] = tonumber(values[j + 1] or 0)
  end
end
local dues, sizes = {}, {}
for i = 1, n do
  local mkey, ikey = KEYS[8 + 2 * i], KEYS[9 + 2 * i]
  local id, gid, group, mr, rt, dl, bi, member = unpack(metas[i])
  if task_exists(T, id) then
    statuses[i] = 1
  else
    statuses[i] = 0
    joined = joined + 1
    local weight = #member + 4  -- the member's share of the flushed envelope
    if bytes[gid] > 0 and bytes[gid] + weight > max_bytes then
      flush(mkey, ikey, gid)
      dues[gid], sizes[gid], firsts[gid], bytes[gid] = nil, nil, nil, 0
      flushed = flushed + 1
    end
    bytes[gid] = bytes[gid] + weight
    task_save(T, id, {s = 'aggregating', gi = gid})
    task_put_envelope(T, id, member)
    local size = redis.call('RPUSH', mkey, id)
    local first = firsts[gid]
    if size == 1 then
      first = now
      redis.call('HSET', ikey, 'gb', ARGV[10 + tonumber(bi)] .. len_field('\122', group),
        'mr', mr, 'rt', rt, 'dl', dl, 'g', group)
      -- a group made here is flushed with the right first instant even before the end
      redis.call('HSET', KEYS[6], 'f:' .. gid, now)
    end
    firsts[gid] = first
    if size >= max_size and inline_flushed < inline_budget then
      local _, count = flush(mkey, ikey, gid)
      inline_flushed = inline_flushed + count
      dues[gid], sizes[gid], firsts[gid], bytes[gid] = nil, nil, nil, 0
      flushed = flushed + 1
    elseif size >= max_size then
      dues[gid], sizes[gid] = now, size
      if earliest < 0 or now < earliest then earliest = now end
    else
      local due = math.min(now + grace, first + max_delay)
      dues[gid], sizes[gid] = due, size
      if size == 1 and (earliest < 0 or due < earliest) then earliest = due end
    end
  end
end
local times = {}
for gid, _ in pairs(dues) do
  times[#times + 1] = 'l:' .. gid
  times[#times + 1] = now
  times[#times + 1] = 'b:' .. gid
  times[#times + 1] = bytes[gid]
  if #times >= 1000 then
    redis.call('HSET', KEYS[6], unpack(times))
    times = {}
  end
end
if #times > 0 then redis.call('HSET', KEYS[6], unpack(times)) end
local function zadd_all(key, scores)
  local args = {}
  for gid, score in pairs(scores) do
    args[#args + 1] = score
    args[#args + 1] = gid
    if #args >= 1000 then
      redis.call('ZADD', key, unpack(args))
      args = {}
    end
  end
  if #args > 0 then redis.call('ZADD', key, unpack(args)) end
end
zadd_all(KEYS[2], dues)
zadd_all(KEYS[1], sizes)
if joined > 0 then redis.call('INCRBY', KEYS[3], joined) end
if flushed > 0 and redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return {statuses, earliest, flushed}
