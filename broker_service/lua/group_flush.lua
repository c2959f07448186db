-- group_flush: turn groups into PENDING tasks, each carrying its members (LeasedTask.members)
-- in join order; the member hashes and the group's keys are deleted in the same step, so a
-- member is in exactly one flushed task. Guarded: in mode 'due' a group is flushed only while
-- the due index says it is due, so a second replica's attempt at the same flush is a no-op.
-- KEYS[1] groups zset (group id -> size)   KEYS[2] due zset (group id -> flush instant)
-- KEYS[3] aggregating counter   KEYS[4] pending list   KEYS[5] waiting marker
-- then per group i (i = 1..n): KEYS[4+2i] member list, KEYS[5+2i] info hash
-- ARGV[1] now (ms)   ARGV[2] notify channel   ARGV[3] queue name   ARGV[4] task key prefix
-- ARGV[5] mode: 'due' (flush groups that are due) or 'now' (flush groups that hold members)
-- then ARGV[5+i] group id i
-- The flushed task's id is 'g-' .. sha1(group id, first member id, first join time).
-- Returns: flat list, 2 values per group: flushed task id ('' when not flushed) and member
-- count, then the queue's earliest flush instant still planned (-1 none).
local now = tonumber(ARGV[1])
local prefix = ARGV[4]

local function varint(n)
  local out = ''
  while n >= 128 do
    out = out .. string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  return out .. string.char(n)
end

local function len_field(tag, bytes)
  return tag .. varint(#bytes) .. bytes
end

-- Same transition as the flush in group_join.lua (scripts cannot share code).
local function flush(mkey, ikey, gid)
  local ids = redis.call('LRANGE', mkey, 0, -1)
  local info = redis.call('HMGET', ikey, 'gb', 'f', 'mr', 'rt', 'dl', 'g')
  redis.call('DEL', mkey, ikey)
  redis.call('ZREM', KEYS[1], gid)
  redis.call('ZREM', KEYS[2], gid)
  if #ids > 0 then redis.call('DECRBY', KEYS[3], #ids) end
  local parts, gone = {}, {}
  for _, id in ipairs(ids) do
    local f = redis.call('HMGET', prefix .. id, 's', 'gm')
    if f[1] == 'aggregating' and f[2] then
      parts[#parts + 1] = len_field('\130\1', f[2])
      gone[#gone + 1] = prefix .. id
    end
  end
  for i = 1, #gone, 500 do
    redis.call('DEL', unpack(gone, i, math.min(i + 499, #gone)))
  end
  if #parts == 0 then return '', 0 end
  local fid = 'g-' .. redis.sha1hex(gid .. '\0' .. ids[1] .. '\0' .. (info[2] or ''))
  if redis.call('EXISTS', prefix .. fid) == 1 then fid = fid .. '-' .. now end
  local stamp = '\8' .. varint(math.floor(now / 1000))
  if now % 1000 > 0 then stamp = stamp .. '\16' .. varint((now % 1000) * 1000000) end
  local env = (info[1] or '') .. len_field('\10', fid) .. len_field('\106', stamp)
    .. table.concat(parts)
  local tkey = prefix .. fid
  redis.call('HSET', tkey, 'b', env, 's', 'pending', 'mr', info[3] or '0', 'na', now,
    'g', info[6] or '')
  if info[4] and info[4] ~= '0' then redis.call('HSET', tkey, 'rt', info[4]) end
  if info[5] and info[5] ~= '0' then redis.call('HSET', tkey, 'dl', info[5]) end
  redis.call('LPUSH', KEYS[4], fid)
  return fid, #parts
end

local out = {}
local flushed = 0
for i = 1, #ARGV - 5 do
  local gid = ARGV[5 + i]
  local mkey, ikey = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  local go
  if ARGV[5] == 'due' then
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
