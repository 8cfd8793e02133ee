-- A data deletion request: the profile, the anonymous profiles merged into it, their ids hashes
-- (and old seen sets), and their indexes. (The pipeline has deleted the events from ClickHouse
-- before this runs.) Returns the ids hashes it deleted, as a set.

local function delete_user(ctx)
  local deleted = {}
  for field in pairs(hash_table(ctx.profile)) do
    if starts_with(field, ANONYMOUS_ID) then
      local anon = string.sub(field, #ANONYMOUS_ID + 1)
      redis.call('DEL', pkey(anon), ikey(anon), legacy_seen_key(anon))
      redis.call('ZREM', USERS, anon)
      deleted[ikey(anon)] = true
      if touched[anon] then touched[anon].merged = false end
    end
  end
  release_customer_id(ctx)
  local ids = ikey(ctx.user)
  redis.call('DEL', ctx.profile, ids, legacy_seen_key(ctx.user))
  redis.call('ZREM', USERS, ctx.user)
  deleted[ids] = true
  ctx.merged = false
  return deleted
end
