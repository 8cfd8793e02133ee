-- Identity merge: fold an anonymous profile into an identified one. The newer write of each
-- property wins, counters add, tags and configs merge. The anonymous id then points here, so
-- its later events (keyed by it, possibly on another partition) land here too.
--
-- MERGE says how each field of the anonymous profile folds in, keyed by plain field name or by
-- field family (prefix). A field no entry covers refuses the whole merge, visibly, before
-- anything is written: the anonymous profile is deleted after a merge, and a field nobody
-- folds in would be lost with it. A new field written by the other files needs an entry here.
--
-- Each entry: function(ctx, field, name, value, own, anon_fields), where `name` is the field
-- without its family prefix, `own` the identified profile's fields before the merge and
-- `anon_fields` the anonymous profile's.

local MERGE = {}
local function nothing() end

local function keep_earliest(ctx, field, name, value, own)
  if not own[field] or tonumber(own[field]) > tonumber(value) then
    redis.call('HSET', ctx.profile, field, value)
  end
end

local function add(ctx, field, name, value)
  redis.call('HINCRBY', ctx.profile, field, value)
end

MERGE.first_seen = keep_earliest
MERGE.created_at = keep_earliest
MERGE.last_seen = function(ctx, field, name, value, own, anon_fields)
  if not own[field] or tonumber(own[field]) < tonumber(value) then
    redis.call('HSET', ctx.profile, field, value, 'last_event', anon_fields.last_event)
  end
end
MERGE.last_event = nothing -- carried with last_seen
MERGE.event_count = add
MERGE[TOTAL] = add

MERGE[PROPERTY_TIME] = function(ctx, field, name, value, own, anon_fields)
  local anon_t, anon_kind = parse_time(value)
  -- older than this profile's clear-all: cleared, as if written here
  if voided_by_clear(decode_cleared(own.cleared), anon_t, name) then return end
  local own_t, own_kind = parse_time(own[field])
  if not supersedes(anon_t, anon_kind, own_t, own_kind) then return end
  if name == 'customer_id' then release_customer_id(ctx) end
  local property = PROPERTY .. name
  local anon_value = anon_fields[property]
  if anon_value then
    redis.call('HSET', ctx.profile, property, anon_value, field, value)
  else -- an unset: its tombstone wins
    redis.call('HDEL', ctx.profile, property)
    redis.call('HSET', ctx.profile, field, value)
  end
end
MERGE[PROPERTY] = nothing -- carried with its time, above

-- The newer clear-all of the two stands. (The anonymous profile's clear-all has already
-- removed this profile's older properties: merge, before the fields are folded.)
MERGE.cleared = function(ctx, field, name, value, own)
  local own_cleared = decode_cleared(own.cleared)
  if not own_cleared or own_cleared.t <= decode_cleared(value).t then
    redis.call('HSET', ctx.profile, field, value)
  end
end

MERGE[TAG] = function(ctx, field, name, value, own)
  if not own[field] or parse_time(own[field]) < parse_time(value) then
    redis.call('HSET', ctx.profile, field, value)
  end
end

MERGE[CONFIG] = function(ctx, field, name, value, own)
  local merged = cjson.decode(value)
  if own[field] then merged = merge_config(cjson.decode(own[field]), merged) end
  redis.call('HSET', ctx.profile, field, cjson.encode(merged))
end

MERGE.rejections = function(ctx, field, name, value, own)
  local all = own.rejections and cjson.decode(own.rejections) or {}
  for _, stored in ipairs(cjson.decode(value)) do all[#all + 1] = stored end
  while #all > MAX_REJECTIONS do table.remove(all, 1) end
  redis.call('HSET', ctx.profile, 'rejections', cjson.encode(all))
end

-- The identified profile's status stands: an anonymous profile's status (set through the API)
-- is not carried over.
MERGE.status = nothing
MERGE.status_ts = nothing

-- Not here on purpose: known and merged_into (such a profile is refused or skipped before the
-- fields are folded), and the anonymous id families (only identified profiles merge, and an
-- identified profile is never merged, so an anonymous profile holds none).

local function merge_rule(field)
  local family, name = string.match(field, '^(%a+:)(.*)$')
  if family then return MERGE[family], name end
  return MERGE[field], nil
end

-- The field families and plain fields of the anonymous profile no merge rule covers, sorted.
local function unmergeable(anon_fields)
  local found, names = {}, {}
  for field in pairs(anon_fields) do
    if not merge_rule(field) then
      local what = string.match(field, '^(%a+:)') or field
      if not found[what] then
        found[what] = true
        names[#names + 1] = what
      end
    end
  end
  table.sort(names)
  return names
end

-- Refused once, visibly, and never retried: later events carrying the same pair skip it.
local function refuse_merge(ctx, change, anon, reason)
  redis.call('HSET', ctx.profile, MERGE_REFUSED .. anon, change.ts)
  reject(ctx, change, 'anonymousId', reason)
end

local function merge(ctx, change, anon)
  local profile = ctx.profile
  if anon == ctx.user or redis.call('HEXISTS', profile, ANONYMOUS_ID .. anon) == 1 then return end
  if redis.call('HEXISTS', profile, MERGE_REFUSED .. anon) == 1 then return end -- refused before
  local anon_key = pkey(anon)
  local anon_fields = hash_table(anon_key)
  if anon_fields.merged_into and anon_fields.merged_into ~= ctx.user then
    return refuse_merge(ctx, change, anon, 'already merged into another user')
  end
  if anon_fields.known then
    return refuse_merge(ctx, change, anon, 'is an identified user: two identified users are never merged')
  end
  if anon_fields.merged_into then return end
  local unknown = unmergeable(anon_fields)
  if #unknown > 0 then
    return refuse_merge(ctx, change, anon,
      'holds fields no merge rule covers (' .. table.concat(unknown, ', ') .. ')')
  end
  -- The anonymous profile's clear-all removes this profile's writes older than it too, as if
  -- both had been one profile all along; done first, so that what the fold compares with
  -- (`own`) is what is left.
  local anon_cleared = decode_cleared(anon_fields.cleared)
  if anon_cleared then clear_properties(ctx, anon_cleared.t, anon_cleared.keep) end
  local own = hash_table(profile)
  for field, value in pairs(anon_fields) do
    local rule, name = merge_rule(field)
    rule(ctx, field, name, value, own, anon_fields)
  end
  local anon_customer_id = anon_fields[PROPERTY .. 'customer_id']
  if anon_customer_id and redis.call('HGET', CUSTOMER_IDS, anon_customer_id) == anon then
    if redis.call('HGET', profile, PROPERTY .. 'customer_id') == anon_customer_id then
      redis.call('HSET', CUSTOMER_IDS, anon_customer_id, ctx.user)
    else
      redis.call('HDEL', CUSTOMER_IDS, anon_customer_id)
    end
  end
  redis.call('DEL', anon_key)
  redis.call('HSET', anon_key, 'merged_into', ctx.user)
  redis.call('ZREM', USERS, anon)
  redis.call('HSET', profile, ANONYMOUS_ID .. anon, change.ts)
  if touched[anon] then touched[anon].merged = true end
  local anon_last = tonumber(anon_fields.last_seen)
  if anon_last and not (ctx.activity and ctx.activity >= anon_last) then
    ctx.activity = anon_last
  end
end
