-- Event-time ordering: every write carries its event time (ms), and writes to one property are
-- ordered by it, not by arrival.

-- "<ms>[:<kind>]" -> ms, kind ('' set, 'o' set_once, 'u' unset, 'a' a value made by increments
-- or list ops alone (a set replaces it like a set's), '1'/'0' tag on/off)
local function parse_time(value)
  if not value then return nil, nil end
  local t, kind = string.match(value, '^(%-?%d+):?(%w?)$')
  return tonumber(t), kind
end

-- Does a write (new_t, new_kind) replace the property's current state (old_t, old_kind)?
-- set_once keeps the earliest set_once and never replaces a set; a set always replaces a
-- set_once (the set_once would have found the property set); otherwise the newer time wins,
-- and at the same time the write applied last.
local function supersedes(new_t, new_kind, old_t, old_kind)
  if not old_t then return true end
  if new_kind == 'o' then
    return (old_kind == 'o' and old_t > new_t) or (old_kind == 'u' and old_t <= new_t)
  end
  if old_kind == 'o' and new_kind == '' then return true end
  return new_t >= old_t
end
