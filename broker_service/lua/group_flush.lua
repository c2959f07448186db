-- group_flush: turn groups into PENDING tasks, each carrying its members (LeasedTask.members)
-- in join order; the member hashes and the group's keys are deleted in the same step, so a
-- member is in exactly one flushed task. Guarded: in mode 'due' a group is flushed only while
-- the due index says it is due, so a second replica's attempt at the same flush is a no-op.
-- KEYS[1] groups zset (group id -> size)   KEYS[2] due zset (group id -> flush instant)
-- KEYS[3] aggregating counter   KEYS[4] pending list   KEYS[5] waiting marker
-- KEYS[6] group times hash
-- KEYS[7] task records hash   KEYS[8] envelopes hash
-- then per group i (i = 1..n): KEYS[7+2i] member list, KEYS[8+2i] info hash
-- ARGV[1] now (ms)   ARGV[2] notify channel   ARGV[3] queue name
-- ARGV[4] mode: 'due' (flush groups that are due) or 'now' (flush groups that hold members)
-- then ARGV[4+i] group id i
-- The flushed task's id is 'g-' .. sha1(group id, first member id, first join time).
-- Returns: flat list, 2 values per group: flushed task id ('' when not flushed) and member
-- count, then the queue's earliest flush instant still planned (-1 none).
local now = tonumber(ARGV[1])
local T = {tasks = KEYS[7], env = KEYS[8]}

-- include: _task
-- include: _group_flush

local out = {}
local flushed = 0
for i = 1, #ARGV - 4 do
  local gid = ARGV[4 + i]
  local mkey, ikey = KEYS[7 + 2 * i], KEYS[8 + 2 * i]
  local go
  if ARGV[4] == 'due' then
    local score = redis.call('ZSCORE', KEYS[2], gid)
    go = score and tonumber(score) <= now
  else
    go = redis.call('EXISTS', mkey) == 1
  end
  local fid, count = '', 0
  if go then fid, count = flush(mkey, ikey, gid) end
  if count > 0 then flushed = flushed + 1 end
  out[#out + 1] = fid
  out[#out + 1] = count
end
if flushed > 0 and redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
local head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
out[#out + 1] = head[2] or -1
return out
