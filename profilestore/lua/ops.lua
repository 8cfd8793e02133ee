-- Property ops (profilestore/wire.py Op): set, set_once and unset are ordered by event time
-- (supersedes); increment and the list ops apply on top of the newest set, and are void
-- when older than it (not when older than a value they made themselves).
--
-- A clear-all (a change's `ca`) removes every property written at or before its time but the
-- ones it keeps (the required ones), as if each were unset then, and leaves the profile its
-- time in the `cleared` field, json {t (ms, as text), keep {name: true}}: any later-arriving
-- write older than it is void, for a property the profile never had too, as after an unset.

local function format_number(x)
  if x == math.floor(x) and math.abs(x) < 9007199254740992 then
    return string.format('%d', x)
  end
  return string.format('%.17g', x)
end

-- JSON lists are handled as the texts of their items: cjson would round numbers
-- (12345678901234567, 0.30000000000000004) and escape '/' when re-encoding the list. Every
-- stored value is valid JSON (written by orjson, or spliced here from orjson's items).

local function skip_space(text, pos)
  return string.find(text, '[^ \t\r\n]', pos) or (#text + 1)
end

-- The position of the closing quote of the JSON string opening at `pos`.
local function string_end(text, pos)
  local i = pos + 1
  while true do
    local found = string.find(text, '["\\]', i)
    if not found then return nil end
    if string.sub(text, found, found) == '"' then return found end
    i = found + 2
  end
end

-- The position of the last character of the JSON value starting at `pos`.
local function value_end(text, pos)
  local first = string.sub(text, pos, pos)
  if first == '"' then return string_end(text, pos) end
  if first == '[' or first == '{' then
    local depth, i = 0, pos
    while true do
      local found = string.find(text, '["%[%]{}]', i)
      if not found then return nil end
      local c = string.sub(text, found, found)
      if c == '"' then
        found = string_end(text, found)
        if not found then return nil end
      elseif c == '[' or c == '{' then
        depth = depth + 1
      else
        depth = depth - 1
        if depth == 0 then return found end
      end
      i = found + 1
    end
  end
  local stop = string.find(text, '[,%]}%s]', pos) or (#text + 1)
  if stop == pos then return nil end
  return stop - 1
end

-- The items of a JSON list as their JSON texts; nil when the text is not a list.
local function json_items(text)
  local pos = skip_space(text, 1)
  if string.sub(text, pos, pos) ~= '[' then return nil end
  local items = {}
  pos = skip_space(text, pos + 1)
  if string.sub(text, pos, pos) == ']' then return items end
  while true do
    local last = value_end(text, pos)
    if not last then return nil end
    items[#items + 1] = string.sub(text, pos, last)
    pos = skip_space(text, last + 1)
    local c = string.sub(text, pos, pos)
    if c == ']' then return items end
    if c ~= ',' then return nil end
    pos = skip_space(text, pos + 1)
  end
end

-- What makes two items the same: a string's decoded text (one stored by an older script may
-- be escaped otherwise), any other item's JSON text, an integral number's without its '.0'
-- (the materializer sends 1.0 as 1; a list set as a whole may hold either).
local function item_key(item)
  if string.sub(item, 1, 1) ~= '"' then return 'v' .. (string.match(item, '^(%-?%d+)%.0$') or item) end
  if not string.find(item, '\\', 1, true) then return 's' .. string.sub(item, 2, -2) end
  return 's' .. cjson.decode('[' .. item .. ']')[1]
end

-- The list after a list op (`op.items` are JSON texts), as JSON text; nil: refused (recorded).
local function list_after(ctx, change, op, current)
  local list = {}
  if current then
    list = json_items(current)
    if not list then
      reject(ctx, change, op.k, 'the current value is not a list')
      return nil
    end
  end
  local result
  if op.o == '-' then
    local removing = {}
    for _, item in ipairs(op.items) do removing[item_key(item)] = true end
    result = {}
    for _, item in ipairs(list) do
      if not removing[item_key(item)] then result[#result + 1] = item end
    end
  else
    local adding = op.items
    if op.o == '+' or op.o == 'f' then -- union: only the items missing, once each
      local present = {}
      for _, item in ipairs(list) do present[item_key(item)] = true end
      adding = {}
      for _, item in ipairs(op.items) do
        local key = item_key(item)
        if not present[key] then
          adding[#adding + 1] = item
          present[key] = true
        end
      end
    end
    local front, back = list, adding -- union and append add at the end
    if op.o == 'f' or op.o == 'p' then front, back = adding, list end
    result = {}
    for _, item in ipairs(front) do result[#result + 1] = item end
    for _, item in ipairs(back) do result[#result + 1] = item end
    if op.max and #result > op.max then
      reject(ctx, change, op.k, 'would hold more than max_items ' .. op.max)
      return nil
    end
  end
  return '[' .. table.concat(result, ',') .. ']'
end

-- The profile's newest clear-all, {t (ms), keep {name: true}}, from the `cleared` field.
local function decode_cleared(raw)
  if not raw then return nil end
  local cleared = cjson.decode(raw)
  return {t = tonumber(cleared.t), keep = cleared.keep}
end

local function read_cleared(profile)
  return decode_cleared(redis.call('HGET', profile, 'cleared'))
end

-- Is a write at `ts` to property `name` older than the clear-all, which refuses it?
local function voided_by_clear(cleared, ts, name)
  return cleared ~= nil and ts < cleared.t and not cleared.keep[name]
end

-- Remove every property (value, time, tombstone) written at or before `ts` but the kept ones.
local function clear_properties(ctx, ts, keep)
  local profile = ctx.profile
  local fields = hash_table(profile)
  local done = {}
  for field in pairs(fields) do
    local name
    if starts_with(field, PROPERTY_TIME) then
      name = string.sub(field, #PROPERTY_TIME + 1)
    elseif starts_with(field, PROPERTY) then
      name = string.sub(field, #PROPERTY + 1)
    end
    if name and not keep[name] and not done[name] then
      done[name] = true
      local t = parse_time(fields[PROPERTY_TIME .. name])
      if not t or t <= ts then
        if name == 'customer_id' then release_customer_id(ctx) end
        redis.call('HDEL', profile, PROPERTY .. name, PROPERTY_TIME .. name)
      end
    end
  end
end

local function apply_clear(ctx, change, ts)
  local keep = {}
  for _, name in ipairs(change.ca) do keep[name] = true end
  clear_properties(ctx, ts, keep)
  local cleared = read_cleared(ctx.profile)
  if not cleared or cleared.t <= ts then
    redis.call('HSET', ctx.profile, 'cleared', cjson.encode({t = change.ts, keep = keep}))
  end
end

-- `cleared`: the profile's clear-all (read_cleared), read once per change.
local function apply_op(ctx, change, ts, op, cleared)
  if voided_by_clear(cleared, ts, op.k) then return end
  local profile = ctx.profile
  local value_field, time_field = PROPERTY .. op.k, PROPERTY_TIME .. op.k
  local old_t, old_kind = parse_time(redis.call('HGET', profile, time_field))
  if op.o == 's' or op.o == 'o' then
    local kind = op.o == 'o' and 'o' or ''
    if not supersedes(ts, kind, old_t, old_kind) then return end
    if op.k == 'customer_id' and not claim_customer_id(ctx, change, op.v) then return end
    redis.call('HSET', profile, value_field, op.v, time_field, change.ts .. (kind == 'o' and ':o' or ''))
    return
  end
  if op.o == 'u' then
    if not supersedes(ts, 'u', old_t, old_kind) then return end
    if op.k == 'customer_id' then release_customer_id(ctx) end
    redis.call('HDEL', profile, value_field)
    redis.call('HSET', profile, time_field, change.ts .. ':u')
    return
  end
  -- increment and the list ops: applied on top of the newest set, unset or clear-all; older
  -- than it, they are void. A time of kind 'a' was made by an increment or list op itself
  -- (no set yet): against it they always apply, so a late increment from an offline device
  -- still counts.
  if old_t and old_t > ts and old_kind ~= 'a' then return end
  local current = redis.call('HGET', profile, value_field)
  local encoded
  if op.o == 'i' then
    local n = 0
    if current then
      n = tonumber(current)
      if not n then
        reject(ctx, change, op.k, 'cannot increment a value that is not a number')
        return
      end
    end
    n = n + op.d
    if (op.lo and n < op.lo) or (op.hi and n > op.hi) then
      reject(ctx, change, op.k, 'the increment would put it outside min/max')
      return
    end
    encoded = format_number(n)
  else
    encoded = list_after(ctx, change, op, current)
    if not encoded then return end
  end
  redis.call('HSET', profile, value_field, encoded)
  if not old_t or old_kind == 'u' then redis.call('HSET', profile, time_field, change.ts .. ':a') end
end

-- A change whose ops are all sets, set_onces and unsets (but of customer_id, which has its
-- index to keep): the same rules as apply_op with one HMGET of what they read and one HSET (and
-- HDEL) of where they leave the properties, instead of two calls per op.
local PLAIN = {s = true, o = true, u = true}
local MAX_PLAIN_OPS = 1000 -- arguments of one call stay far below unpack's limit

local function plain_ops(ops)
  if #ops > MAX_PLAIN_OPS then return false end
  for _, op in ipairs(ops) do
    if not PLAIN[op.o] or op.k == 'customer_id' then return false end
  end
  return true
end

local function apply_plain_ops(ctx, change, ts)
  local ops, profile = change.ops, ctx.profile
  local fields = {'cleared'}
  for i, op in ipairs(ops) do fields[i + 1] = PROPERTY_TIME .. op.k end
  local stored = redis.call('HMGET', profile, unpack(fields))
  local cleared = decode_cleared(stored[1])
  -- property -> its time, and its value (false: unset), as the ops so far leave them
  local times, values = {}, {}
  for i, op in ipairs(ops) do
    if times[op.k] == nil then times[op.k] = stored[i + 1] end
  end
  for _, op in ipairs(ops) do
    if not voided_by_clear(cleared, ts, op.k) then
      local old_t, old_kind = parse_time(times[op.k])
      if op.o == 'u' then
        if supersedes(ts, 'u', old_t, old_kind) then
          values[op.k], times[op.k] = false, change.ts .. ':u'
        end
      else
        local kind = op.o == 'o' and 'o' or ''
        if supersedes(ts, kind, old_t, old_kind) then
          values[op.k], times[op.k] = op.v, change.ts .. (kind == 'o' and ':o' or '')
        end
      end
    end
  end
  local sets, dels = {}, {}
  for name, value in pairs(values) do
    if value then
      sets[#sets + 1] = PROPERTY .. name
      sets[#sets + 1] = value
    else
      dels[#dels + 1] = PROPERTY .. name
    end
    sets[#sets + 1] = PROPERTY_TIME .. name
    sets[#sets + 1] = times[name]
  end
  if #dels > 0 then redis.call('HDEL', profile, unpack(dels)) end
  if #sets > 0 then redis.call('HSET', profile, unpack(sets)) end
end

local function apply_ops(ctx, change, ts)
  if plain_ops(change.ops) then return apply_plain_ops(ctx, change, ts) end
  local cleared = read_cleared(ctx.profile)
  for _, op in ipairs(change.ops) do apply_op(ctx, change, ts, op, cleared) end
end
