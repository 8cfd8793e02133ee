-- Tags and status (management commands): the newer write wins; at the same time, the write
-- applied last.

local function apply_tag(ctx, change, ts, tag, on)
  local field = TAG .. tag
  local old_t = parse_time(redis.call('HGET', ctx.profile, field))
  if old_t and old_t > ts then return end
  redis.call('HSET', ctx.profile, field, change.ts .. (on and ':1' or ':0'))
end

local function apply_status(ctx, change, ts, status)
  local old = tonumber(redis.call('HGET', ctx.profile, 'status_ts'))
  if not old or old <= ts then
    redis.call('HSET', ctx.profile, 'status', status, 'status_ts', change.ts)
  end
end
