-- schedule_fire: handle one due tick of a schedule (or a manual trigger) atomically: check that
-- the schedule's next tick is still the one planned (so a tick is handled once across
-- replicas), record missed ticks, enqueue the task (unless the previous fire's task is still
-- unfinished and overlap is SKIP), move the next tick, and append to the fire history.
-- KEYS[1] schedule state hash (fields n: next tick ms, l: last fired task id)
-- KEYS[2] fire history list (newest first)   KEYS[3] pending list   KEYS[4] scheduled zset
-- KEYS[5] waiting marker   KEYS[6] task records hash   KEYS[7] envelopes hash
-- KEYS[8] unique locks hash   KEYS[9] unique expiry zset
-- KEYS[10] forward due index: a SCHEDULED task files the queue at its instant
-- ARGV[1] now ms   ARGV[2] mode: "tick" or "manual"   ARGV[3] expected next tick ms
-- ARGV[4] new next tick ms   ARGV[5] "1": skip while the previous task is unfinished
-- ARGV[6] previous task id the caller saw ("" none; only checked with ARGV[5] "1")   ARGV[7] history length kept
-- ARGV[8] notify channel   ARGV[9] queue name   ARGV[10] first missed tick ms ("" none)
-- ARGV[11] missed tick count   ARGV[12] tick to fire ms ("" none)
-- ARGV[13] task meta as in enqueue.lua ("" none)   ARGV[14] task envelope
-- ARGV[15] why the tick's task could not be built (with ARGV[12] set and ARGV[13] "")
-- (the task to fire is the id in ARGV[13]; the previous fire's task is ARGV[6])
-- Returns: {status, next tick ms}: status 1 fired, 2 skipped (overlap), 3 only missed ticks
-- recorded, 4 manual fire, 5 refused (unique lock held, or ARGV[15]), 0 stale (the next tick moved or the
-- previous task changed: nothing done), -1 no schedule state (deleted or moved: nothing done).
-- include: _task
-- include: _unique
local T = {tasks = KEYS[6], env = KEYS[7]}
local now = ARGV[1]
local manual = ARGV[2] == 'manual'
local next_tick = redis.call('HGET', KEYS[1], 'n')
if not next_tick then return {-1, -1} end
if not manual then
  if next_tick ~= ARGV[3] or
      (ARGV[5] == '1' and (redis.call('HGET', KEYS[1], 'l') or '') ~= ARGV[6]) then
    return {0, tonumber(next_tick)}
  end
end

local function record(entry)
  entry.at = now
  redis.call('LPUSH', KEYS[2], cjson.encode(entry))
end

local function trim_and_return(status)
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[7]) - 1)
  return {status, tonumber(redis.call('HGET', KEYS[1], 'n'))}
end

if not manual then
  redis.call('HSET', KEYS[1], 'n', ARGV[4])
  if ARGV[10] ~= '' then
    record({s = 3, t = ARGV[10], n = ARGV[11], q = ARGV[9]})
  end
  if ARGV[12] == '' then return trim_and_return(3) end
  if ARGV[5] == '1' and ARGV[6] ~= '' then
    local state = task_fields(T, ARGV[6], 's')
    if state == 'pending' or state == 'scheduled' or state == 'retry' or state == 'active' then
      record({s = 2, t = ARGV[12], id = ARGV[6], q = ARGV[9]})
      return trim_and_return(2)
    end
  end
end

if ARGV[13] == '' then
  record({s = 5, t = ARGV[12], q = ARGV[9], e = ARGV[15]})
  return trim_and_return(5)
end
local id, at, mr, ttl, rt, uk, dl = string.match(ARGV[13],
  '^([^\t]*)\t(%d+)\t(%d+)\t(%d+)\t(%d+)\t([^\t]*)\t(%d+)\t.*$')
ttl = tonumber(ttl)
local status = 1
if manual then status = 4 end
if not task_exists(T, id) then
  if uk ~= '' and not unique_take({locks = KEYS[8], expiry = KEYS[9]}, uk, id, tonumber(now),
      ttl) then
    record({s = 5, t = ARGV[12], id = id, q = ARGV[9],
            e = 'DUPLICATE_TASK: an equal unique task holds the lock'})
    return trim_and_return(5)
  end
  local later = tonumber(at) > tonumber(now)
  local state = 'pending'
  if later then state = 'scheduled' end
  local r = {mr = mr, s = state, na = later and at or now}
  if uk ~= '' then r.uk, r.ut = uk, task_str(ttl) end
  if rt ~= '0' then r.rt = rt end
  if dl ~= '0' then r.dl = dl end
  task_save(T, id, r)
  task_put_envelope(T, id, ARGV[14])
  if later then
    redis.call('ZADD', KEYS[4], at, id)
    redis.call('ZADD', KEYS[10], 'LT', at, ARGV[9])
  else
    redis.call('LPUSH', KEYS[3], id)
    if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('PUBLISH', ARGV[8], ARGV[9]) end
  end
end
if not manual then redis.call('HSET', KEYS[1], 'l', id) end
record({s = status, t = ARGV[12], id = id, q = ARGV[9]})
return trim_and_return(status)
