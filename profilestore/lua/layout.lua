-- The apply script, first part: the key layout. profilestore/script.py concatenates the files of
-- this directory in the order it declares (a local is visible only below its declaration) and
-- fills in every dollar-brace name from profilestore/layout.py: no file here spells a key or a
-- field prefix itself.
--
-- KEYS: per user, the profile hash then the ids hash. ARGV[1]: JSON list of [user, changes],
-- each change in the wire format of profilestore/wire.py. ARGV[2]: today, a day number (days
-- since 1970-01-01 UTC), which the ids hash's prune compares the changes' `kp` with.

local USERS = '${users_index}'
local CUSTOMER_IDS = '${customer_ids}'
local IDS_META = '${ids_meta_field}'

-- field families of the profile hash (profilestore.layout.FAMILIES)
local TOTAL = '${total}'
local PROPERTY = '${property}'
local PROPERTY_TIME = '${property_time}'
local TAG = '${tag}'
local CONFIG = '${config}'
local ANONYMOUS_ID = '${anonymous_id}'
local MERGE_REFUSED = '${merge_refused}'

local function pkey(user) return '${profile_key_start}' .. user .. '${profile_key_end}' end
local function ikey(user) return '${ids_key_start}' .. user .. '${ids_key_end}' end
-- the set of applied messageIds from before the ids hash: never read, only deleted
local function legacy_seen_key(user) return '${seen_key_start}' .. user .. '${seen_key_end}' end

-- Every user this run has touched, by id: {user, profile (key), known (set in this run),
-- merged (its profile holds merged_into: true, false, or nil for unknown), activity (the newest
-- activity, ms, for the users list)}. A merge or a deletion changes what others' say.
local touched = {}

local function hash_table(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function starts_with(text, prefix)
  return string.sub(text, 1, #prefix) == prefix
end

-- Arguments per call: Lua's unpack fails past about 8,000 values. Even, so that the pairs of
-- HSET and ZADD stay together.
local CHUNK = 4000

-- redis.call(command, key, [option], args...) in calls of at most CHUNK args.
local function call_in_chunks(command, key, option, args)
  for first = 1, #args, CHUNK do
    local last = math.min(first + CHUNK - 1, #args)
    if option then
      redis.call(command, key, option, unpack(args, first, last))
    else
      redis.call(command, key, unpack(args, first, last))
    end
  end
end
