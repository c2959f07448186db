-- Task records (included where a script says "-- include: _task"). A queue's tasks are fields
-- of two hashes passed in KEYS, `T = {tasks = <tasks hash>, env = <envelopes hash>}`: the
-- record (task id -> cmsgpack map of the task's fields, every value a string, as HGET of a
-- per-task hash gave) and the envelope (task id -> bytes), kept apart so that a state change
-- never re-encodes it. A record always holds 's'; an empty table would pack as an array, which
-- task_record and task_records.py read as no fields.

-- A value as Redis stores a Lua number given to HSET: integral -> digits, else %.17g.
local function task_str(v)
  if type(v) == 'number' then
    if v == math.floor(v) and v > -1e17 and v < 1e17 then return string.format('%.0f', v) end
    return string.format('%.17g', v)
  end
  return v
end

-- The record as a table (field -> string), or nil when the task is absent.
local function task_record(T, id)
  local raw = redis.call('HGET', T.tasks, id)
  if not raw then return nil end
  return cmsgpack.unpack(raw)
end

-- Store a record table (as returned by task_record, changed in place).
local function task_save(T, id, r)
  redis.call('HSET', T.tasks, id, cmsgpack.pack(r))
end

-- Values of the named fields (nil for absent ones; all nil when the task is absent).
local function task_fields(T, id, ...)
  local names = {...}
  local r = task_record(T, id) or {}
  local out = {}
  for i = 1, #names do out[i] = r[names[i]] end
  return unpack(out, 1, #names)
end

-- Set fields ('f', v, ...) of a record in place (nil values are skipped); returns it.
local function task_assign(r, ...)
  local args = {...}
  for i = 1, #args, 2 do
    if args[i + 1] ~= nil then r[args[i]] = task_str(args[i + 1]) end
  end
  return r
end

-- Remove fields of a record in place; returns it.
local function task_clear(r, ...)
  for _, f in ipairs({...}) do r[f] = nil end
  return r
end

local function task_exists(T, id)
  return redis.call('HEXISTS', T.tasks, id) == 1
end

-- Delete a task's record and envelope.
local function task_del(T, id)
  redis.call('HDEL', T.tasks, id)
  redis.call('HDEL', T.env, id)
end

local function task_envelope(T, id)
  return redis.call('HGET', T.env, id)
end

local function task_put_envelope(T, id, bytes)
  redis.call('HSET', T.env, id, bytes)
end
