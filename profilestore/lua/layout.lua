-- The apply script, first part: the key layout. profilestore/script.py concatenates the files of
-- this directory in the order it declares (a local is visible only below its declaration) and
-- fills in every dollar-brace name from profilestore/layout.py: no file here spells a key or a
-- field prefix itself.
--
-- KEYS: per user, the profile hash then the seen set. ARGV[1]: JSON list of [user, changes],
-- each change in the wire format of profilestore/wire.py.

local USERS = '${users_index}'
local CUSTOMER_IDS = '${customer_ids}'

-- field families of the profile hash (profilestore.layout.FAMILIES)
local TOTAL = '${total}'
local PROPERTY = '${property}'
local PROPERTY_TIME = '${property_time}'
local TAG = '${tag}'
local CONFIG = '${config}'
local ANONYMOUS_ID = '${anonymous_id}'
local MERGE_REFUSED = '${merge_refused}'

local function pkey(user) return '${profile_key_start}' .. user .. '${profile_key_end}' end
local function skey(user) return '${seen_key_start}' .. user .. '${seen_key_end}' end

local function hash_table(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function starts_with(text, prefix)
  return string.sub(text, 1, #prefix) == prefix
end
