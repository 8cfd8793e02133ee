-- Exact dedup within a window: the ids hash of a user (profilestore/layout.py) maps each
-- messageId (or command id) applied to the day until which it is remembered, its change's
-- `kp`; a change whose id is remembered is skipped, so replays change nothing. Its field
-- IDS_META holds "<expiry day>:<prune day>":
--   expiry: the largest kp the hash has held; the key expires at the end of that day
--     (EXPIREAT), called only when it grows, so a steady user costs no extra call per run
--   prune: the smallest kp it holds; once today is past it, the entries whose kp is past are
--     deleted (HGETALL, HDEL) when the user is next touched: at most about once a day
-- The prune runs before the entry's changes are checked: an id past its day is never taken
-- for applied.
--
-- Per user entry: one HGET (the meta field) and an HSETNX per change; HSET of the meta field
-- only when it changes.

local today = tonumber(ARGV[2])

-- "<expiry>:<prune>" -> expiry, prune (numbers, nil when absent)
local function parse_meta(raw)
  if not raw then return nil, nil end
  local expiry, prune = string.match(raw, '^(%d+):(%d*)$')
  return tonumber(expiry), tonumber(prune)
end

local function prune_ids(ids)
  local flat = redis.call('HGETALL', ids.key)
  local past, smallest = {}, nil
  for i = 1, #flat, 2 do
    local field = flat[i]
    if field ~= IDS_META then
      local kp = tonumber(flat[i + 1])
      if not kp or kp < today then
        past[#past + 1] = field
      elseif not smallest or kp < smallest then
        smallest = kp
      end
    end
  end
  if #past > 0 then call_in_chunks('HDEL', ids.key, nil, past) end
  ids.prune = smallest
  ids.meta_changed = true
end

-- The dedup state of a user entry (its user and ids key): {key, expiry, prune, meta_changed,
-- expiry_grew}.
local function open_ids(user, key)
  local raw = redis.call('HGET', key, IDS_META)
  local expiry, prune = parse_meta(raw)
  local ids = {key = key, expiry = expiry, prune = prune, meta_changed = false, expiry_grew = false}
  -- a new ids hash: the set it replaces is read no more
  if not raw then redis.call('DEL', legacy_seen_key(user)) end
  if prune and prune < today then prune_ids(ids) end
  return ids
end

-- The ids hash was deleted (with its user's data): it starts anew.
local function ids_deleted(ids)
  ids.expiry, ids.prune, ids.meta_changed, ids.expiry_grew = nil, nil, false, false
end

-- Is this the first time the change's id is seen? If so, it is remembered until its kp (never
-- before today: its entry would be pruned at once). The prune has left no entry past its day.
local function first_time(ids, change)
  local kp = tonumber(change.kp) or today + 1
  if kp < today then kp = today end
  if redis.call('HSETNX', ids.key, change.m, kp) == 0 then return false end
  if not ids.expiry or kp > ids.expiry then
    ids.expiry = kp
    ids.expiry_grew = true
    ids.meta_changed = true
  end
  if not ids.prune or kp < ids.prune then
    ids.prune = kp
    ids.meta_changed = true
  end
  return true
end

local function close_ids(ids)
  if not ids.meta_changed then return end
  local meta = string.format('%d:', ids.expiry) .. (ids.prune and string.format('%d', ids.prune) or '')
  redis.call('HSET', ids.key, IDS_META, meta)
  if ids.expiry_grew then
    redis.call('EXPIREAT', ids.key, string.format('%d', math.floor(ids.expiry + 1) * 86400))
  end
end
