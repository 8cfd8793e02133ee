-- Rejections: writes refused (by the materializer, or here against the current state), kept on
-- the profile with the messageId and event time of the change that asked for them.

local MAX_REJECTIONS = 20

local function record_rejections(profile, change, rejections)
  local raw = redis.call('HGET', profile, 'rejections')
  local all = raw and cjson.decode(raw) or {}
  for _, rejection in ipairs(rejections) do
    all[#all + 1] = {f = rejection.f, r = rejection.r, m = change.m, ts = change.ts}
  end
  while #all > MAX_REJECTIONS do table.remove(all, 1) end
  redis.call('HSET', profile, 'rejections', cjson.encode(all))
end

local function reject(ctx, change, field, reason)
  record_rejections(ctx.profile, change, {{f = field, r = reason}})
end
