-- resume_queue: un-pause a queue and wake the Leases already waiting on it (in any broker
-- replica) in the same step, so that they take its tasks now rather than at their next
-- re-check. One script rather than DEL + PUBLISH in a transaction: a Redis Cluster transaction
-- cannot carry PUBLISH, a script can.
-- KEYS[1] paused flag
-- ARGV[1] notify channel   ARGV[2] queue name
-- Returns: 1 when the queue was paused, else 0.
local was = redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return was
