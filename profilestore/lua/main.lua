-- Applies profile changes atomically, in order, per user. A change whose messageId the user's
-- ids hash remembers is skipped: replays change nothing (dedup.lua).
--
-- Every redis.call costs more than the Lua around it: an event is one HMGET of what it reads
-- (the merge's flags too) and one HSET of what it changes, the users list one ZADD per run.

-- Returns whether the change's merge (mg) is done or refused already (read on the way).
local function apply_event(ctx, change, ts)
  local profile, total = ctx.profile, TOTAL .. change.n
  local stored
  if change.mg then
    stored = redis.call('HMGET', profile, 'first_seen', 'last_seen', 'event_count', total, 'known',
      ANONYMOUS_ID .. change.mg, MERGE_REFUSED .. change.mg)
  else
    stored = redis.call('HMGET', profile, 'first_seen', 'last_seen', 'event_count', total, 'known')
  end
  -- the counters as HINCRBY would leave them
  local writes = {'event_count', (tonumber(stored[3]) or 0) + 1, total, (tonumber(stored[4]) or 0) + 1}
  local n = 4
  local first, last = stored[1], stored[2]
  if (not first) or tonumber(first) > ts then
    writes[5], writes[6] = 'first_seen', change.ts
    n = 6
  end
  if (not last) or tonumber(last) <= ts then
    writes[n + 1], writes[n + 2], writes[n + 3], writes[n + 4] = 'last_seen', change.ts, 'last_event', change.le
    n = n + 4
  end
  if change.kn and not ctx.known then
    if not stored[5] then -- as HSETNX: the value is always 1
      writes[n + 1], writes[n + 2] = 'known', '1'
      n = n + 2
    end
    ctx.known = true
  end
  redis.call('HSET', profile, unpack(writes, 1, n))
  return change.mg ~= nil and (stored[6] or stored[7]) ~= false
end

-- Returns the ids hashes a deletion deleted (a set), or nil.
local function apply_change(ctx, change)
  local profile = ctx.profile
  local ts = tonumber(change.ts)
  if change.cmd == 'delete' then
    local deleted = delete_user(ctx)
    ctx.activity = nil
    ctx.known = nil -- a change after it in this call rebuilds an unidentified profile
    return deleted
  end
  if change.cmd == 'update' and redis.call('EXISTS', profile) == 0 then return nil end -- deleted meanwhile
  if change.cmd == 'create' then
    local created = tonumber(redis.call('HGET', profile, 'created_at'))
    if not created or created > ts then redis.call('HSET', profile, 'created_at', change.ts) end
    redis.call('HSETNX', profile, 'known', '1')
  end
  local merged_before = false
  if change.n then merged_before = apply_event(ctx, change, ts) end
  if change.kn and not ctx.known then
    redis.call('HSETNX', profile, 'known', '1')
    ctx.known = true
  end
  if change.mg and not merged_before then merge(ctx, change, change.mg) end
  if change.ca then apply_clear(ctx, change, ts) end
  if change.ops then apply_ops(ctx, change, ts) end
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
  return nil
end

if not today then error('ARGV[2] must be today, a day number') end
local batch = cjson.decode(ARGV[1])
for u, entry in ipairs(batch) do
  local user, changes = entry[1], entry[2]
  local profile = KEYS[2 * u - 1]
  -- an anonymous id merged into a user: its events apply to that user's profile (a merge
  -- later in this script folds what was applied here before it)
  local merged_into = redis.call('HGET', profile, 'merged_into')
  local target = merged_into or user
  local ctx = touched[target]
  if not ctx then
    ctx = {user = target, profile = merged_into and pkey(target) or profile}
    touched[target] = ctx
  end
  if not merged_into then ctx.merged = false end
  local ids = open_ids(user, KEYS[2 * u])
  for _, change in ipairs(changes) do
    if first_time(ids, change) then
      local deleted = apply_change(ctx, change)
      if deleted and deleted[ids.key] then ids_deleted(ids) end
    end
  end
  close_ids(ids)
end

-- The users list orders by last activity (the newest event or API creation): scores only rise.
local scores, n = {}, 0
for user, ctx in pairs(touched) do
  if ctx.activity then
    local merged = ctx.merged
    if merged == nil then merged = redis.call('HEXISTS', ctx.profile, 'merged_into') == 1 end
    if not merged then
      scores[n + 1], scores[n + 2] = ctx.activity, user
      n = n + 2
    end
  end
end
if n > 0 then call_in_chunks('ZADD', USERS, 'GT', scores) end
return 1
