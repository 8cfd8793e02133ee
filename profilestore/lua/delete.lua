-- A data deletion request: the profile, the anonymous profiles merged into it, and their
-- indexes. (The pipeline has deleted the events from ClickHouse before this runs.)

local function delete_user(ctx)
  for field in pairs(hash_table(ctx.profile)) do
    if starts_with(field, ANONYMOUS_ID) then
      local anon = string.sub(field, #ANONYMOUS_ID + 1)
      redis.call('DEL', pkey(anon), skey(anon))
      redis.call('ZREM', USERS, anon)
    end
  end
  release_customer_id(ctx)
  redis.call('DEL', ctx.profile, ctx.seen)
  redis.call('ZREM', USERS, ctx.user)
end
