-- Applies profile changes atomically, in order, per user. A change whose messageId is already
-- in the user's seen set is skipped: replays change nothing.
--
-- ctx: the user the changes apply to, {user, profile (key), seen (key), known (set in this
-- run), activity (the newest activity, ms, for the users list)}.

local function apply_event(ctx, change, ts)
  local profile = ctx.profile
  local span = redis.call('HMGET', profile, 'first_seen', 'last_seen')
  if (not span[1]) or tonumber(span[1]) > ts then
    redis.call('HSET', profile, 'first_seen', change.ts)
  end
  if (not span[2]) or tonumber(span[2]) <= ts then
    redis.call('HSET', profile, 'last_seen', change.ts, 'last_event', change.le)
  end
  redis.call('HINCRBY', profile, 'event_count', 1)
  redis.call('HINCRBY', profile, TOTAL .. change.n, 1)
end

local function apply_change(ctx, change)
  local profile = ctx.profile
  local ts = tonumber(change.ts)
  if change.cmd == 'delete' then
    delete_user(ctx)
    ctx.activity = nil
    ctx.known = nil -- a change after it in this call rebuilds an unidentified profile
    return
  end
  if change.cmd == 'update' and redis.call('EXISTS', profile) == 0 then return end -- deleted meanwhile
  if change.cmd == 'create' then
    local created = tonumber(redis.call('HGET', profile, 'created_at'))
    if not created or created > ts then redis.call('HSET', profile, 'created_at', change.ts) end
    redis.call('HSETNX', profile, 'known', '1')
  end
  if change.n then apply_event(ctx, change, ts) end
  if change.kn and not ctx.known then
    redis.call('HSETNX', profile, 'known', '1')
    ctx.known = true
  end
  if change.mg then merge(ctx, change, change.mg) end
  if change.ca then apply_clear(ctx, change, ts) end
  if change.ops then
    local cleared = read_cleared(profile)
    for _, op in ipairs(change.ops) do apply_op(ctx, change, ts, op, cleared) end
  end
  if change.ta then
    for _, tag in ipairs(change.ta) do apply_tag(ctx, change, ts, tag, true) end
  end
  if change.tr then
    for _, tag in ipairs(change.tr) do apply_tag(ctx, change, ts, tag, false) end
  end
  if change.st then apply_status(ctx, change, ts, change.st) end
  if change.cfg then
    for i = 1, #change.cfg - 1, 2 do serve_config(ctx, change, change.cfg[i], change.cfg[i + 1]) end
  end
  if change.x then record_rejections(profile, change, change.x) end
  if (change.n or change.cmd == 'create') and not (ctx.activity and ctx.activity >= ts) then
    ctx.activity = ts
  end
end

local batch = cjson.decode(ARGV[1])
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
  for _, change in ipairs(changes) do
    if redis.call('SADD', seen, change.m) == 1 then apply_change(ctx, change) end
  end
end
for user, ctx in pairs(touched) do
  if ctx.activity and redis.call('HEXISTS', ctx.profile, 'merged_into') == 0 then
    redis.call('ZADD', USERS, 'GT', ctx.activity, user)
  end
end
return 1
