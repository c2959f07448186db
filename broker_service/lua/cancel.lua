-- cancel: flag an ACTIVE task so that its worker's next heartbeat answers CANCEL_REQUESTED.
-- KEYS[1] task records hash   KEYS[2] envelopes hash
-- ARGV[1] task id
-- include: _task
-- Returns: 0 flagged, 1 not active, 2 not found.
local T = {tasks = KEYS[1], env = KEYS[2]}
local r = task_record(T, ARGV[1])
if not r then return 2 end
if r.s ~= 'active' then return 1 end
task_save(T, ARGV[1], task_assign(r, 'cx', '1'))
return 0
