-- search: examines at most ARGV[4] tasks of one state's index after the cursor (read only) and
-- answers those matching every given criterion, oldest first, up to ARGV[5] of them.
-- KEYS[1] the state's index (pending list or the state's zset)
-- ARGV[1] 'list' | 'zset'   ARGV[2] cursor id ('' = start)   ARGV[3] cursor score
-- ARGV[4] most tasks to examine   ARGV[5] most matches   ARGV[6] task key prefix
-- ARGV[7] id prefix   ARGV[8] type   ARGV[9] last error type   ARGV[10] payload substring
-- ARGV[11] state name
-- Returns: {1 when the index was walked to its end else 0, cursor id, cursor score, examined,
--   matching ids...}
-- include: _envelope
-- include: _walk
local kind, prefix = ARGV[1], ARGV[6]
local crit = {id_prefix = ARGV[7], ttype = ARGV[8], etype = ARGV[9], before = -1,
  needle = ARGV[10]}
local most = tonumber(ARGV[5])
local ids, aux, skip, done, llen, cpos = index_window(kind, KEYS[1], ARGV[2], ARGV[3],
  tonumber(ARGV[4]))
local cid, cscore = ARGV[2], ARGV[3]
local examined = 0
local found = {}
for j, id in ipairs(ids) do
  cid, cscore = id, aux[j]
  if kind == 'list' then cpos = llen - aux[j] end
  if not skip[j] then
    examined = examined + 1
    local tkey = prefix .. id
    local f = redis.call('HMGET', tkey, 's', 'et')
    if f[1] == ARGV[11] and task_matches(id, tkey, f[2] or '', crit) then
      found[#found + 1] = id
      if #found >= most then
        if j < #ids then done = false end
        break
      end
    end
  end
end
if kind == 'list' then cscore = cpos end
local out = {done and 1 or 0, cid, tostring(cscore), examined}
for _, id in ipairs(found) do out[#out + 1] = id end
return out
