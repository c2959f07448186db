-- Shared by group_join.lua and group_flush.lua (included where they say "-- include:").
-- Expects locals `now` (ms) and `T` (the task hashes, _task.lua, included before), and KEYS[1] groups zset,
-- KEYS[2] due zset, KEYS[3] aggregating counter, KEYS[4] pending list, KEYS[6] group times.
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

-- Turn one group into a PENDING task; its members' records and the group's keys are deleted.
local function flush(mkey, ikey, gid)
  local ids = redis.call('LRANGE', mkey, 0, -1)
  local info = redis.call('HMGET', ikey, 'gb', 'f', 'mr', 'rt', 'dl', 'g')
  info[2] = redis.call('HGET', KEYS[6], 'f:' .. gid)
  redis.call('HDEL', KEYS[6], 'f:' .. gid, 'l:' .. gid, 'b:' .. gid)
  redis.call('DEL', mkey, ikey)
  redis.call('ZREM', KEYS[1], gid)
  redis.call('ZREM', KEYS[2], gid)
  if #ids > 0 then redis.call('DECRBY', KEYS[3], #ids) end
  local parts, gone = {}, {}
  for _, id in ipairs(ids) do
    local s = task_fields(T, id, 's')
    local member = s == 'aggregating' and task_envelope(T, id)
    if member then
      parts[#parts + 1] = len_field('\130\1', member)
      gone[#gone + 1] = id
    end
  end
  for i = 1, #gone, 500 do
    redis.call('HDEL', T.tasks, unpack(gone, i, math.min(i + 499, #gone)))
    redis.call('HDEL', T.env, unpack(gone, i, math.min(i + 499, #gone)))
  end
  if #parts == 0 then return '', 0 end
  local fid = 'g-' .. redis.sha1hex(gid .. '\0' .. ids[1] .. '\0' .. (info[2] or ''))
  if task_exists(T, fid) then fid = fid .. '-' .. now end
  local stamp = '\8' .. varint(math.floor(now / 1000))
  if now % 1000 > 0 then stamp = stamp .. '\16' .. varint((now % 1000) * 1000000) end
  local env = (info[1] or '') .. len_field('\10', fid) .. len_field('\106', stamp)
    .. table.concat(parts)
  local r = task_assign({}, 's', 'pending', 'mr', info[3] or '0', 'na', now, 'g', info[6] or '')
  if info[4] and info[4] ~= '0' then r.rt = info[4] end
  if info[5] and info[5] ~= '0' then r.dl = info[5] end
  task_save(T, fid, r)
  task_put_envelope(T, fid, env)
  redis.call('LPUSH', KEYS[4], fid)
  return fid, #parts
end
