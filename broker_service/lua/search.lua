-- search: examines at most ARGV[4] tasks of one state's index after the cursor (read only) and
-- answers those matching every given criterion, oldest first, up to ARGV[5] of them.
-- KEYS[1] the state's index (pending list or the state's zset)
-- KEYS[2] task records hash   KEYS[3] envelopes hash
-- ARGV[1] 'list' | 'zset'   ARGV[2] cursor id ('' = start)   ARGV[3] cursor score
-- ARGV[4] most tasks to examine   ARGV[5] most matches
-- ARGV[6] id prefix   ARGV[7] type   ARGV[8] last error type   ARGV[9] payload substring
-- ARGV[10] state name
-- Returns: {1 when the index was walked to its end else 0, cursor id, cursor score, examined,
--   matching ids...}
-- include: _task
-- include: _envelope
-- include: _walk
local kind = ARGV[1]
local T = {tasks = KEYS[2], env = KEYS[3]}
local crit = {id_prefix = ARGV[6], ttype = ARGV[7], etype = ARGV[8], before = -1,
  needle = ARGV[9]}
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
    local s, et = task_fields(T, id, 's', 'et')
    if s == ARGV[10] and task_matches(T, id, et or '', crit) then
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
