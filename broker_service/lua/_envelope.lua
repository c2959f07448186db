-- Shared by bulk.lua and search.lua (after _task): reads a task envelope (a leasq.v1.LeasedTask in protobuf
-- encoding) in Lua, so that filters run where the tasks are instead of shipping them out.
local function pb_varint(s, i)
  local result, mul = 0, 1
  while true do
    local b = string.byte(s, i)
    if not b then return nil, i end
    i = i + 1
    result = result + (b % 128) * mul
    if b < 128 then return result, i end
    mul = mul * 128
  end
end

-- google.protobuf.Timestamp bytes -> ms.
local function pb_timestamp_ms(s)
  local i, seconds, nanos = 1, 0, 0
  while i <= #s do
    local tag, v
    tag, i = pb_varint(s, i)
    if not tag or tag % 8 ~= 0 then break end
    v, i = pb_varint(s, i)
    if not v then break end
    if tag == 8 then seconds = v elseif tag == 16 then nanos = v end
  end
  return seconds * 1000 + math.floor(nanos / 1000000)
end

-- The envelope's type (field 3), payload (field 4) and enqueued_at in ms (field 13, nil when
-- absent), each read only when wanted; the walk stops once every wanted field was seen (each
-- occurs once in an envelope).
local function envelope_fields(env, want_type, want_payload, want_enqueued)
  local i, n = 1, #env
  local ttype, payload, enqueued = '', '', nil
  local left = (want_type and 1 or 0) + (want_payload and 1 or 0) + (want_enqueued and 1 or 0)
  while i <= n and left > 0 do
    local tag, len
    tag, i = pb_varint(env, i)
    if not tag then break end
    local field, wire = math.floor(tag / 8), tag % 8
    if wire == 0 then
      len, i = pb_varint(env, i)
    elseif wire == 2 then
      len, i = pb_varint(env, i)
      if not len then break end
      if field == 3 and want_type then
        ttype = string.sub(env, i, i + len - 1)
        left = left - 1
      elseif field == 4 and want_payload then
        payload = string.sub(env, i, i + len - 1)
        left = left - 1
      elseif field == 13 and want_enqueued then
        enqueued = pb_timestamp_ms(string.sub(env, i, i + len - 1))
        left = left - 1
      end
      i = i + len
    elseif wire == 1 then
      i = i + 8
    elseif wire == 5 then
      i = i + 4
    else
      break
    end
  end
  return ttype, payload, enqueued
end

-- Whether a task matches every set criterion of `c`: id_prefix, ttype, etype (last error
-- type, hash field `et`), before (enqueued at or before this ms; -1: any), needle (payload
-- substring). `T` holds the queue's task hashes (_task.lua); the envelope is read only when a
-- criterion needs it.
local function task_matches(T, id, et, c)
  if c.id_prefix ~= '' and string.sub(id, 1, #c.id_prefix) ~= c.id_prefix then return false end
  if c.etype ~= '' and et ~= c.etype then return false end
  if c.ttype ~= '' or c.before >= 0 or c.needle ~= '' then
    local env = task_envelope(T, id)
    if not env then return false end
    local t, p, enq = envelope_fields(env, c.ttype ~= '', c.needle ~= '', c.before >= 0)
    if c.ttype ~= '' and t ~= c.ttype then return false end
    if c.before >= 0 and (not enq or enq > c.before) then return false end
    if c.needle ~= '' and not string.find(p, c.needle, 1, true) then return false end
  end
  return true
end
