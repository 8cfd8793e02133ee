-- customer_id is unique: the CUSTOMER_IDS index maps each (JSON) value to the one user holding it.

local function release_customer_id(ctx)
  local old = redis.call('HGET', ctx.profile, PROPERTY .. 'customer_id')
  if old and redis.call('HGET', CUSTOMER_IDS, old) == ctx.user then
    redis.call('HDEL', CUSTOMER_IDS, old)
  end
end

-- Claim the value in the index, or refuse the write.
local function claim_customer_id(ctx, change, value)
  local owner = redis.call('HGET', CUSTOMER_IDS, value)
  if owner and owner ~= ctx.user then
    reject(ctx, change, 'customer_id', 'already belongs to user ' .. owner)
    return false
  end
  local old = redis.call('HGET', ctx.profile, PROPERTY .. 'customer_id')
  if old ~= value then release_customer_id(ctx) end
  redis.call('HSET', CUSTOMER_IDS, value, ctx.user)
  return true
end
