"""One atomic Lua script per algorithm, the same arithmetic as `algorithms.py`, in microseconds.

Every script takes ARGV[1] = now (empty: the Redis server's clock), ARGV[2] = `hit` or
`undo`, ARGV[3] = cost, then its own parameters; a hit returns
{allowed, remaining, reset_us, retry_us, now}. Keys expire by themselves (PEXPIRE), and a
script touching two keys gets them with the same hash tag, so they share a Redis Cluster slot.
"""

from __future__ import annotations

_PRELUDE = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local mode, cost = ARGV[2], tonumber(ARGV[3])
local function num(x) return string.format('%.17g', x) end
-- key lifetime: until the state is fresh again, plus a second of slack (clock steps, tests)
local function ms(us) return math.ceil(math.max(0, us) / 1000) + 1000 end
"""

FIXED_WINDOW = (
    _PRELUDE
    + """
local limit, window = tonumber(ARGV[4]), tonumber(ARGV[5])
local index = math.floor(now / window)
local s = redis.call('HMGET', KEYS[1], 'w', 'n')
local count = 0
if tonumber(s[1]) == index then count = tonumber(s[2]) end
if mode == 'undo' then
  if count > 0 then redis.call('HSET', KEYS[1], 'n', math.max(0, count - cost)) end
  return 0
end
local reset = (index + 1) * window - now
if count + cost > limit then return {0, limit - count, reset, reset, now} end
redis.call('HSET', KEYS[1], 'w', num(index), 'n', count + cost)
redis.call('PEXPIRE', KEYS[1], ms(reset))
return {1, limit - count - cost, reset, 0, now}
"""
)

SLIDING_WINDOW_COUNTER = (
    _PRELUDE
    + """
local limit, window = tonumber(ARGV[4]), tonumber(ARGV[5])
local index = math.floor(now / window)
local s = redis.call('HMGET', KEYS[1], 'w', 'n')
local w, current, previous = tonumber(s[1]), tonumber(s[2]) or 0, 0
if w == index then
  previous = tonumber(redis.call('GET', KEYS[2])) or 0
elseif w == index - 1 then
  previous, current = current, 0
else
  current = 0
end
if mode == 'undo' then
  if w == index and current > 0 then redis.call('HSET', KEYS[1], 'n', math.max(0, current - cost)) end
  return 0
end
local elapsed = now - index * window
local scaled = previous * (window - elapsed) + current * window
local function remaining(x) return math.max(0, math.floor((limit * window - x) / window)) end
local function reset(c)
  if c > 0 then return (index + 2) * window - now end
  if previous > 0 then return (index + 1) * window - now end
  return 0
end
if scaled + cost * window > limit * window then
  local retry
  if current + cost <= limit then
    local e = window - math.floor((limit - cost - current) * window / previous)
    retry = index * window + e - now
  else
    local e = window - math.floor((limit - cost) * window / current)
    retry = (index + 1) * window + e - now
  end
  return {0, remaining(scaled), reset(current), math.max(1, retry), now}
end
current = current + cost
local ttl = ms((index + 2) * window - now)
redis.call('HSET', KEYS[1], 'w', num(index), 'n', current)
redis.call('PEXPIRE', KEYS[1], ttl)
if w ~= index then redis.call('SET', KEYS[2], previous, 'PX', ttl) end
return {1, remaining(scaled + cost * window), reset(current), 0, now}
"""
)

TOKEN_BUCKET = (
    _PRELUDE
    + """
local limit, window, burst = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local s = redis.call('HMGET', KEYS[1], 'u', 't')
local used, last = tonumber(s[1]) or 0, tonumber(s[2]) or now
if mode == 'undo' then
  if used > 0 then redis.call('HSET', KEYS[1], 'u', num(math.max(0, used - cost))) end
  return 0
end
used = math.max(0, used - math.max(0, now - last) * limit / window)
if used + cost - burst > 1e-9 then
  local retry = math.ceil((used + cost - burst) * window / limit)
  return {0, math.floor(burst - used + 1e-9), math.ceil(used * window / limit), math.max(1, retry), now}
end
used = used + cost
local reset = math.ceil(used * window / limit)
redis.call('HSET', KEYS[1], 'u', num(used), 't', num(now))
redis.call('PEXPIRE', KEYS[1], ms(reset))
return {1, math.floor(burst - used + 1e-9), reset, 0, now}
"""
)

GCRA = (
    _PRELUDE
    + """
local limit, window, burst = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local interval = window / limit
local tolerance = burst * interval
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
if mode == 'undo' then
  local back = math.max(now, tat - cost * interval)
  redis.call('SET', KEYS[1], num(back), 'PX', ms(back - now))
  return 0
end
local new_tat = tat + cost * interval
local allow_at = new_tat - tolerance
if allow_at - now > 0.5 then
  local remaining = math.max(0, math.floor((now - (tat - tolerance) + 0.5) / interval))
  return {0, remaining, math.ceil(tat - now), math.ceil(allow_at - now), now}
end
redis.call('SET', KEYS[1], num(new_tat), 'PX', ms(new_tat - now))
return {1, math.max(0, math.floor((now - allow_at + 0.5) / interval)), math.ceil(new_tat - now), 0, now}
"""
)

SLIDING_WINDOW_LOG = (
    _PRELUDE
    + """
local limit, window, member = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
if mode == 'undo' then
  for i = 1, cost do redis.call('ZREM', KEYS[1], member .. ':' .. i) end
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', num(now - window))
local size = redis.call('ZCARD', KEYS[1])
if size + cost > limit then
  local nth = redis.call('ZRANGE', KEYS[1], size + cost - limit - 1, size + cost - limit - 1, 'WITHSCORES')
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  return {0, limit - size, tonumber(last[2]) + window - now, tonumber(nth[2]) + window - now, now}
end
for i = 1, cost do redis.call('ZADD', KEYS[1], num(now), member .. ':' .. i) end
redis.call('PEXPIRE', KEYS[1], ms(window))
return {1, limit - size - cost, window, 0, now}
"""
)

CONCURRENCY = (
    _PRELUDE
    + """
local limit, lease_us, member = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
if mode == 'undo' then
  redis.call('ZREM', KEYS[1], member)
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', num(now))
local held = redis.call('ZCARD', KEYS[1]) * cost
if held + cost > limit then return {0, limit - held, 0, 1000000, now} end
redis.call('ZADD', KEYS[1], num(now + lease_us), member)
redis.call('PEXPIRE', KEYS[1], ms(lease_us))
return {1, limit - held - cost, 0, 0, now}
"""
)

SCRIPTS = {
    "fixed_window": FIXED_WINDOW,
    "sliding_window_counter": SLIDING_WINDOW_COUNTER,
    "token_bucket": TOKEN_BUCKET,
    "gcra": GCRA,
    "sliding_window_log": SLIDING_WINDOW_LOG,
    "concurrency": CONCURRENCY,
}
"""Script text by algorithm name."""
