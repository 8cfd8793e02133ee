-- Applies profile changes atomically, in order, per user; the layout is in infra/profile_keys.py.
-- KEYS: per user, the profile hash then the seen set. ARGV[1]: JSON list of [user, changes].
-- A change whose messageId is already in the user's seen set is skipped: replays change nothing.
-- Every write carries its event time (ms); property writes are ordered by it, not by arrival.
-- The dollar-brace names are filled in from infra/profile_keys.py when the script is loaded.

local batch = cjson.decode(ARGV[1])
local USERS = '${users_index}'
local CUSTOMER_IDS = '${customer_ids}'
local MAX_REJECTIONS = 20
local MAX_HISTORY = 50

local function pkey(user) return '${prefix}:{' .. user .. '}:profile' end
local function skey(user) return '${prefix}:{' .. user .. '}:seen' end

local function format_number(x)
  if x == math.floor(x) and math.abs(x) < 9007199254740992 then
    return string.format('%d', x)
  end
  return string.format('%.17g', x)
end

-- "<ms>[:<kind>]" -> ms, kind ('' set, 'o' set_once, 'u' unset, '1'/'0' tag on/off)
local function parse_time(value)
  if not value then return nil, nil end
  local t, kind = string.match(value, '^(%-?%d+):?(%w?)$')
  return tonumber(t), kind
end

-- Does a write (new_t, new_kind) replace the property's current state (old_t, old_kind)?
-- set_once keeps the earliest set_once and never replaces a set; a set always replaces a
-- set_once (the set_once would have found the property set); otherwise the newer time wins.
local function supersedes(new_t, new_kind, old_t, old_kind)
  if not old_t then return true end
  if new_kind == 'o' then
    return (old_kind == 'o' and old_t > new_t) or (old_kind == 'u' and old_t <= new_t)
  end
  if old_kind == 'o' and new_kind == '' then return true end
  return new_t >= old_t
end

local function record_rejections(profile, c, list)
  local raw = redis.call('HGET', profile, 'rejections')
  local all = raw and cjson.decode(raw) or {}
  for _, x in ipairs(list) do
    all[#all + 1] = {f = x.f, r = x.r, m = c.m, ts = c.ts}
  end
  while #all > MAX_REJECTIONS do table.remove(all, 1) end
  redis.call('HSET', profile, 'rejections', cjson.encode(all))
end

local function reject(ctx, c, field, reason)
  record_rejections(ctx.profile, c, {{f = field, r = reason}})
end

local function release_customer_id(ctx)
  local old = redis.call('HGET', ctx.profile, 'p:customer_id')
  if old and redis.call('HGET', CUSTOMER_IDS, old) == ctx.user then
    redis.call('HDEL', CUSTOMER_IDS, old)
  end
end

-- customer_id is unique: claim it in the index, or refuse the write.
local function claim_customer_id(ctx, c, value)
  local owner = redis.call('HGET', CUSTOMER_IDS, value)
  if owner and owner ~= ctx.user then
    reject(ctx, c, 'customer_id', 'already belongs to user ' .. owner)
    return false
  end
  local old = redis.call('HGET', ctx.profile, 'p:customer_id')
  if old ~= value then release_customer_id(ctx) end
  redis.call('HSET', CUSTOMER_IDS, value, ctx.user)
  return true
end

local function decode_list(current)
  if not current then return {} end
  local ok, decoded = pcall(cjson.decode, current)
  if not ok or type(decoded) ~= 'table' then return nil end
  if next(decoded) ~= nil and #decoded == 0 then return nil end -- an object
  return decoded
end

local function apply_op(ctx, c, ts, op)
  local p = ctx.profile
  local value_field, time_field = 'p:' .. op.k, 'pt:' .. op.k
  local old_t, old_kind = parse_time(redis.call('HGET', p, time_field))
  if op.o == 's' or op.o == 'o' then
    local kind = op.o == 'o' and 'o' or ''
    if not supersedes(ts, kind, old_t, old_kind) then return end
    if op.k == 'customer_id' and not claim_customer_id(ctx, c, op.v) then return end
    redis.call('HSET', p, value_field, op.v, time_field, c.ts .. (kind == 'o' and ':o' or ''))
    return
  end
  if op.o == 'u' then
    if not supersedes(ts, 'u', old_t, old_kind) then return end
    if op.k == 'customer_id' then release_customer_id(ctx) end
    redis.call('HDEL', p, value_field)
    redis.call('HSET', p, time_field, c.ts .. ':u')
    return
  end
  -- increment, union, remove: applied on top of the newest set; older than it, they are void
  if old_t and old_t > ts then return end
  local current = redis.call('HGET', p, value_field)
  local encoded
  if op.o == 'i' then
    local n = 0
    if current then
      n = tonumber(current)
      if not n then
        reject(ctx, c, op.k, 'cannot increment a value that is not a number')
        return
      end
    end
    n = n + op.d
    if (op.lo and n < op.lo) or (op.hi and n > op.hi) then
      reject(ctx, c, op.k, 'the increment would put it outside min/max')
      return
    end
    encoded = format_number(n)
  else
    local list = decode_list(current)
    if not list then
      reject(ctx, c, op.k, 'the current value is not a list')
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
        reject(ctx, c, op.k, 'would hold more than max_items ' .. op.max)
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
  redis.call('HSET', p, value_field, encoded)
  if not old_t or old_kind == 'u' then redis.call('HSET', p, time_field, c.ts) end
end

local function apply_tag(ctx, c, ts, tag, on)
  local field = 'g:' .. tag
  local old_t = parse_time(redis.call('HGET', ctx.profile, field))
  if old_t and old_t > ts then return end
  redis.call('HSET', ctx.profile, field, c.ts .. (on and ':1' or ':0'))
end

-- A config's variation history: the changes of variation in event-time order.
local function with_change(history, ts_text, variation)
  local ts = tonumber(ts_text)
  local pos = #history + 1
  while pos > 1 and tonumber(history[pos - 1][1]) > ts do pos = pos - 1 end
  table.insert(history, pos, {ts_text, variation})
  local changes = {}
  for _, entry in ipairs(history) do
    if #changes == 0 or changes[#changes][2] ~= entry[2] then changes[#changes + 1] = entry end
  end
  while #changes > MAX_HISTORY do table.remove(changes, 1) end
  return changes
end

local function merge_config(into, other)
  into.n = into.n + other.n
  if tonumber(other.f) < tonumber(into.f) then into.f = other.f end
  if tonumber(other.l) > tonumber(into.l) then into.l = other.l end
  for _, entry in ipairs(other.h) do into.h = with_change(into.h, entry[1], entry[2]) end
  into.v = into.h[#into.h][2]
  return into
end

local function serve_config(ctx, c, key, variation)
  local field = 'c:' .. key
  local raw = redis.call('HGET', ctx.profile, field)
  local served = {n = 1, f = c.ts, l = c.ts, h = {{c.ts, variation}}, v = variation}
  if raw then served = merge_config(cjson.decode(raw), served) end
  redis.call('HSET', ctx.profile, field, cjson.encode(served))
end

local function hash_table(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

-- Fold an anonymous profile into this identified one: the newer write of each property wins,
-- counters add, tags and configs merge. The anonymous id then points here, so its later events
-- (keyed by it, possibly on another partition) land here too.
local function merge(ctx, c, anon)
  local p = ctx.profile
  if anon == ctx.user or redis.call('HEXISTS', p, 'a:' .. anon) == 1 then return end
  if redis.call('HEXISTS', p, 'ax:' .. anon) == 1 then return end -- refused before
  local ap = pkey(anon)
  local a = hash_table(ap)
  local refusal
  if a.merged_into and a.merged_into ~= ctx.user then
    refusal = 'already merged into another user'
  elseif a.known then
    refusal = 'is an identified user: two identified users are never merged'
  end
  if refusal then
    redis.call('HSET', p, 'ax:' .. anon, c.ts)
    reject(ctx, c, 'anonymousId', refusal)
    return
  end
  if a.merged_into then return end
  local mine = hash_table(p)
  for field, value in pairs(a) do
    local family, rest = string.match(field, '^(%a+):(.*)$')
    if field == 'first_seen' or field == 'created_at' then
      if not mine[field] or tonumber(mine[field]) > tonumber(value) then
        redis.call('HSET', p, field, value)
      end
    elseif field == 'last_seen' then
      if not mine[field] or tonumber(mine[field]) < tonumber(value) then
        redis.call('HSET', p, field, value, 'last_event', a.last_event)
      end
    elseif field == 'event_count' or family == 't' then
      redis.call('HINCRBY', p, field, value)
    elseif family == 'pt' then
      local at, akind = parse_time(value)
      local mt, mkind = parse_time(mine[field])
      if supersedes(at, akind, mt, mkind) then
        if rest == 'customer_id' then release_customer_id(ctx) end
        local v = a['p:' .. rest]
        if v then
          redis.call('HSET', p, 'p:' .. rest, v, field, value)
        else
          redis.call('HDEL', p, 'p:' .. rest)
          redis.call('HSET', p, field, value)
        end
      end
    elseif family == 'g' then
      if not mine[field] or parse_time(mine[field]) < parse_time(value) then
        redis.call('HSET', p, field, value)
      end
    elseif family == 'c' then
      local merged = cjson.decode(value)
      if mine[field] then merged = merge_config(cjson.decode(mine[field]), merged) end
      redis.call('HSET', p, field, cjson.encode(merged))
    elseif field == 'rejections' then
      local all = mine.rejections and cjson.decode(mine.rejections) or {}
      for _, x in ipairs(cjson.decode(value)) do all[#all + 1] = x end
      while #all > MAX_REJECTIONS do table.remove(all, 1) end
      redis.call('HSET', p, 'rejections', cjson.encode(all))
    end
  end
  local anon_customer_id = a['p:customer_id']
  if anon_customer_id and redis.call('HGET', CUSTOMER_IDS, anon_customer_id) == anon then
    if redis.call('HGET', p, 'p:customer_id') == anon_customer_id then
      redis.call('HSET', CUSTOMER_IDS, anon_customer_id, ctx.user)
    else
      redis.call('HDEL', CUSTOMER_IDS, anon_customer_id)
    end
  end
  redis.call('DEL', ap)
  redis.call('HSET', ap, 'merged_into', ctx.user)
  redis.call('ZREM', USERS, anon)
  redis.call('HSET', p, 'a:' .. anon, c.ts)
  local anon_last = tonumber(a.last_seen)
  if anon_last and not (ctx.activity and ctx.activity >= anon_last) then
    ctx.activity = anon_last
  end
end

-- A data deletion request: the profile, the anonymous profiles merged into it, and their
-- indexes. (The pipeline has deleted the events from ClickHouse before this runs.)
local function delete_user(ctx)
  for field in pairs(hash_table(ctx.profile)) do
    if string.sub(field, 1, 2) == 'a:' then
      local anon = string.sub(field, 3)
      redis.call('DEL', pkey(anon), skey(anon))
      redis.call('ZREM', USERS, anon)
    end
  end
  release_customer_id(ctx)
  redis.call('DEL', ctx.profile, ctx.seen)
  redis.call('ZREM', USERS, ctx.user)
end

local function apply_event(ctx, c, ts)
  local p = ctx.profile
  local span = redis.call('HMGET', p, 'first_seen', 'last_seen')
  if (not span[1]) or tonumber(span[1]) > ts then
    redis.call('HSET', p, 'first_seen', c.ts)
  end
  if (not span[2]) or tonumber(span[2]) <= ts then
    redis.call('HSET', p, 'last_seen', c.ts, 'last_event', c.le)
  end
  redis.call('HINCRBY', p, 'event_count', 1)
  redis.call('HINCRBY', p, 't:' .. c.n, 1)
end

local function apply_change(ctx, c)
  local p = ctx.profile
  local ts = tonumber(c.ts)
  if c.cmd == 'delete' then
    delete_user(ctx)
    ctx.activity = nil
    ctx.deleted = true
    return
  end
  if c.cmd == 'update' and redis.call('EXISTS', p) == 0 then return end -- deleted meanwhile
  if c.cmd == 'create' then
    local created = tonumber(redis.call('HGET', p, 'created_at'))
    if not created or created > ts then redis.call('HSET', p, 'created_at', c.ts) end
    redis.call('HSETNX', p, 'known', '1')
  end
  if c.n then apply_event(ctx, c, ts) end
  if c.k and not ctx.known then
    redis.call('HSETNX', p, 'known', '1')
    ctx.known = true
  end
  if c.mg then merge(ctx, c, c.mg) end
  if c.ops then
    for _, op in ipairs(c.ops) do apply_op(ctx, c, ts, op) end
  end
  if c.ta then
    for _, tag in ipairs(c.ta) do apply_tag(ctx, c, ts, tag, true) end
  end
  if c.tr then
    for _, tag in ipairs(c.tr) do apply_tag(ctx, c, ts, tag, false) end
  end
  if c.st then
    local old = tonumber(redis.call('HGET', p, 'status_ts'))
    if not old or old <= ts then redis.call('HSET', p, 'status', c.st, 'status_ts', c.ts) end
  end
  if c.cfg then serve_config(ctx, c, c.cfg[1], c.cfg[2]) end
  if c.x then record_rejections(p, c, c.x) end
  if (c.n or c.cmd == 'create') and not (ctx.activity and ctx.activity >= ts) then
    ctx.activity = ts
  end
end

-- The users list orders by last activity (the newest event or API creation): scores only rise.
local touched = {}
for u, entry in ipairs(batch) do
  local user, changes = entry[1], entry[2]
  local profile, seen = KEYS[2 * u - 1], KEYS[2 * u]
  -- an anonymous id merged into a user: its events apply to that user's profile (a merge
  -- later in this script folds what was applied here before it)
  local target = redis.call('HGET', profile, 'merged_into') or user
  local ctx = touched[target] or {user = target, profile = pkey(target), seen = skey(target)}
  touched[target] = ctx
  for _, c in ipairs(changes) do
    if redis.call('SADD', seen, c.m) == 1 then apply_change(ctx, c) end
  end
end
for user, ctx in pairs(touched) do
  if ctx.activity and redis.call('HEXISTS', ctx.profile, 'merged_into') == 0 then
    redis.call('ZADD', USERS, 'GT', ctx.activity, user)
  end
end
return 1
