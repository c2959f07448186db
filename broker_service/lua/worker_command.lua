-- worker_command: give a live worker an operator's command. Commands only escalate: a worker
-- told to stop stays told to stop when asked to go quiet afterwards. The command is a field of
-- the worker's registration, so it expires with it. Brokers are told on the wake-up channel,
-- so that a long poll of the worker on any replica answers at once.
-- KEYS[1] worker hash
-- ARGV[1] command ('quiet' or 'stop')   ARGV[2] wake-up channel   ARGV[3] wake-up message
-- Returns: the command now in force, or '' when the worker is not registered (not live).
if redis.call('EXISTS', KEYS[1]) == 0 then return '' end
local command = ARGV[1]
if redis.call('HGET', KEYS[1], 'c') == 'stop' then command = 'stop' end
redis.call('HSET', KEYS[1], 'c', command)
redis.call('PUBLISH', ARGV[2], ARGV[3])
return command
