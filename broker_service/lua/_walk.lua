-- Shared by bulk.lua and search.lua: walks one state's index a window at a time, oldest
-- first, from a cursor that stays valid while tasks leave and enter the index between calls.
-- A cursor is the id of a task still in the index (bulk: the last one examined and left in
-- place; search: the last one examined) plus its score (sorted sets), or '' for the start.
-- For the pending list, the cursor's "score" is its position counted from the right end
-- (1 = the next to lease), which stays put while tasks are enqueued at the left end: a LINDEX
-- there confirms it; only when it moved (leases, put-backs at the right end) is the cursor
-- searched for (LPOS, a scan from the right end). Without the position, a filtered walk over
-- a long list would rescan every task it left in place at every window.
-- Returns the window's ids, their scores (zset) or indexes from the left (list), flags of ids
-- already examined before (skip), whether the window reached the index's end, and for the
-- list its length and the cursor's position from the right (0 when there is no cursor).
local function index_window(kind, key, cid, cscore, n)
  local ids, aux, skip = {}, {}, {}
  if kind == 'list' then
    -- Pending: the right end is the next to lease (the oldest), so walk right to left.
    local llen = redis.call('LLEN', key)
    local stop = nil
    if cid ~= '' then
      local pos = tonumber(cscore) or 0
      if pos >= 1 and pos <= llen and redis.call('LINDEX', key, -pos) == cid then
        stop = llen - pos
      else
        stop = redis.call('LPOS', key, cid, 'RANK', -1)
      end
    end
    -- Unknown cursor: it was leased, and with it everything to its right; start again there.
    if not stop then stop = llen end
    local start = math.max(0, stop - n)
    if stop > 0 then
      local got = redis.call('LRANGE', key, start, stop - 1)
      for j = #got, 1, -1 do
        ids[#ids + 1] = got[j]
        aux[#aux + 1] = start + j - 1
        skip[#skip + 1] = false
      end
    end
    return ids, aux, skip, start == 0, llen, llen - stop
  end
  local got
  local rank = nil
  if cid ~= '' then rank = redis.call('ZRANK', key, cid) end
  if cid == '' then
    got = redis.call('ZRANGE', key, 0, n - 1, 'WITHSCORES')
  elseif rank then
    got = redis.call('ZRANGE', key, rank + 1, rank + n, 'WITHSCORES')
  else
    -- The cursor's task left the index: go on from its score; members of that score up to
    -- the cursor's id (ordered by id within a score) were examined already.
    got = redis.call('ZRANGE', key, cscore, '+inf', 'BYSCORE', 'LIMIT', 0, n, 'WITHSCORES')
  end
  for j = 1, #got, 2 do
    ids[#ids + 1] = got[j]
    aux[#aux + 1] = got[j + 1]
    skip[#skip + 1] = (not rank and cid ~= '' and tonumber(got[j + 1]) == tonumber(cscore)
      and got[j] <= cid)
  end
  return ids, aux, skip, #got / 2 < n
end
