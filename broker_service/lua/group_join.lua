-- group_join: add grouped tasks to their groups (AGGREGATING). A group that reaches the queue's
-- max size is flushed at once, in this script, into one PENDING task (see group_flush.lua).
-- KEYS[1] groups zset (group id -> size)   KEYS[2] due zset (group id -> flush instant)
-- KEYS[3] aggregating counter   KEYS[4] pending list   KEYS[5] waiting marker
-- KEYS[6] queue settings hash
-- then per task i (i = 1..n): KEYS[4+3i] task hash, KEYS[5+3i] group's member list,
--   KEYS[6+3i] group's info hash
-- ARGV[1] now (ms)   ARGV[2] notify channel   ARGV[3] queue name   ARGV[4] task key prefix
-- ARGV[5] n   ARGV[6] default grace (ms)   ARGV[7] default max delay (ms)
-- ARGV[8] default max size
-- then per task i: ARGV[5+4i] meta "id<TAB>group id<TAB>group key<TAB>max_retry<TAB>
--   retention ms<TAB>deadline ms (0 = none)", ARGV[6+4i] envelope (LeasedTask bytes),
--   ARGV[7+4i] member (GroupMember bytes), ARGV[8+4i] base envelope of a flushed task
-- The flushed task's id is 'g-' .. sha1(group id, first member id, first join time): the
-- same flush always makes the same id.
-- Returns: {statuses (0 joined, 1 task id conflict), earliest flush instant of a group created
-- here (-1 none), groups flushed here}
local now = tonumber(ARGV[1])
local prefix = ARGV[4]

-- include: _group_flush

local s = redis.call('HMGET', KEYS[6], 'gp', 'md', 'ms')
local grace = tonumber(s[1] or ARGV[6])
local max_delay = tonumber(s[2] or ARGV[7])
local max_size = tonumber(s[3] or ARGV[8])
local n = tonumber(ARGV[5])
local statuses = {}
local earliest = -1
local flushed = 0
local joined = 0
-- The indexes' new scores, written once per group at the end in a few multi-member ZADDs
-- (a ZADD per join was a third of the script's time).
local dues, sizes = {}, {}
for i = 1, n do
  local tkey, mkey, ikey = KEYS[4 + 3 * i], KEYS[5 + 3 * i], KEYS[6 + 3 * i]
  local id, gid, group, mr, rt, dl = string.match(ARGV[5 + 4 * i],
    '^([^\t]*)\t([^\t]*)\t([^\t]*)\t(%d+)\t(%d+)\t(%d+)$')
  if redis.call('EXISTS', tkey) == 1 then
    statuses[i] = 1
  else
    statuses[i] = 0
    joined = joined + 1
    redis.call('HSET', tkey, 'b', ARGV[6 + 4 * i], 'gm', ARGV[7 + 4 * i], 's', 'aggregating',
      'g', group)
    local size = redis.call('RPUSH', mkey, id)
    local first = now
    if size == 1 then
      redis.call('HSET', ikey, 'f', now, 'l', now, 'gb', ARGV[8 + 4 * i], 'mr', mr, 'rt', rt,
        'dl', dl, 'g', group)
    else
      redis.call('HSET', ikey, 'l', now)
      first = tonumber(redis.call('HGET', ikey, 'f') or now)
    end
    if size >= max_size then
      flush(mkey, ikey, gid)
      dues[gid], sizes[gid] = nil, nil
      flushed = flushed + 1
    else
      local due = math.min(now + grace, first + max_delay)
      dues[gid], sizes[gid] = due, size
      if size == 1 and (earliest < 0 or due < earliest) then earliest = due end
    end
  end
end
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
