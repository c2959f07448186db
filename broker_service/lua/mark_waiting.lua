-- mark_waiting: tell enqueuers that a broker long-polls these queues until at least now + ttl,
-- so they publish a wake-up; never shortens a longer wait already marked by another poller.
-- KEYS[1] waiting marker of one queue
-- ARGV[1] ttl (ms)
-- Returns: 1
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('SET', KEYS[1], '1', 'PX', ttl)
end
return 1
