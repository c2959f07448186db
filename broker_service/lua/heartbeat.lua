-- heartbeat: extend the leases of one queue that a worker still holds.
-- KEYS[1] active zset   KEYS[2] task records hash   KEYS[3] envelopes hash
-- KEYS[4] reclaim due index (an override may shorten a lease: the queue is filed at each new
--   expiry, the earliest kept)
-- ARGV[1] now (ms)   ARGV[2] lease duration override (ms; 0 = each lease's own duration)
-- ARGV[3] queue name
-- then per lease i: ARGV[2+2i] task id, ARGV[3+2i] lease token
-- Returns: per lease, the new expiry (ms), negated when an operator asked to cancel the
-- task, or 0 when the lease is lost.
-- include: _task
local now = tonumber(ARGV[1])
local override = tonumber(ARGV[2])
local T = {tasks = KEYS[2], env = KEYS[3]}
local out = {}
local shortest = nil
for i = 1, (#ARGV - 3) / 2 do
  local id = ARGV[2 + 2 * i]
  local r = task_record(T, id)
  if r and r.s == 'active' and r.tk == ARGV[3 + 2 * i] then
    local dur = override
    if dur == 0 then dur = tonumber(r.ld) end
    local expires = now + dur
    task_save(T, id, task_assign(r, 'lx', expires))
    redis.call('ZADD', KEYS[1], expires, id)
    if override > 0 and (not shortest or expires < shortest) then shortest = expires end
    if r.cx then out[i] = -expires else out[i] = expires end
  else
    out[i] = 0
  end
end
if shortest then redis.call('ZADD', KEYS[4], 'LT', shortest, ARGV[3]) end
return out
