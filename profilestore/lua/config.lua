-- Served variations of dynamic configs: {v variation, f first served, l last served, n times,
-- h history}. The variation is the one served at the newest event time.

local MAX_HISTORY = 50

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

local function serve_config(ctx, change, key, variation)
  local field = CONFIG .. key
  local raw = redis.call('HGET', ctx.profile, field)
  local served = {n = 1, f = change.ts, l = change.ts, h = {{change.ts, variation}}, v = variation}
  if raw then served = merge_config(cjson.decode(raw), served) end
  redis.call('HSET', ctx.profile, field, cjson.encode(served))
end
