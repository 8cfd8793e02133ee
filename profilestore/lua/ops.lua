-- Property ops (profilestore/wire.py Op): set, set_once and unset are ordered by event time
-- (supersedes); increment, union and remove apply on top of the newest write, and are void
-- when older than the property's time.

local function format_number(x)
  if x == math.floor(x) and math.abs(x) < 9007199254740992 then
    return string.format('%d', x)
  end
  return string.format('%.17g', x)
end

local function decode_list(current)
  if not current then return {} end
  local ok, decoded = pcall(cjson.decode, current)
  if not ok or type(decoded) ~= 'table' then return nil end
  if next(decoded) ~= nil and #decoded == 0 then return nil end -- an object
  return decoded
end

local function apply_op(ctx, change, ts, op)
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
  -- increment, union, remove: applied on top of the newest set; older than it, they are void.
  -- (The property's time is that of its first write, an increment or union included.)
  if old_t and old_t > ts then return end
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
    local list = decode_list(current)
    if not list then
      reject(ctx, change, op.k, 'the current value is not a list')
      return
    end
    if op.o == '+' then
      local present = {}
      for _, v in ipairs(list) do present[v] = true end
      for _, v in ipairs(op.items) do
        if not present[v] then
          list[#list + 1] = v
          present[v] = true
        end
      end
      if op.max and #list > op.max then
        reject(ctx, change, op.k, 'would hold more than max_items ' .. op.max)
        return
      end
    else
      local removing = {}
      for _, v in ipairs(op.items) do removing[v] = true end
      local kept = {}
      for _, v in ipairs(list) do
        if not removing[v] then kept[#kept + 1] = v end
      end
      list = kept
    end
    encoded = #list == 0 and '[]' or cjson.encode(list)
  end
  redis.call('HSET', profile, value_field, encoded)
  if not old_t or old_kind == 'u' then redis.call('HSET', profile, time_field, change.ts) end
end
