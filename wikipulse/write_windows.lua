-- One partition's batch of finalized windows, written atomically (see wikipulse/store.py).
--
-- KEYS: closed (hash), pending (zset), complete (zset; also the pub/sub channel), meta (hash)
-- ARGV: partition, closed_end, partitions, window_ms, ttl_s,
--       then for each window: key, start, n, member1, count1, ..., membern, countn
--
-- Idempotent: counts are absolute (ZADD, never ZINCRBY) and the partition's closed mark
-- only moves forward, so a replayed batch leaves the same state. A window becomes
-- complete (indexed and announced, once) when every partition has closed past its end.
local closed_key, pending_key, complete_key, meta_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local partition = ARGV[1]
local closed_end, partitions = tonumber(ARGV[2]), tonumber(ARGV[3])
local window_ms, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('HSET', meta_key, 'window_ms', window_ms, 'partitions', partitions)
local i = 6
while i <= #ARGV do
  local key, start, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local chunk = {}
  for j = 0, n - 1 do
    chunk[#chunk + 1] = ARGV[i + 2 * j + 1]
    chunk[#chunk + 1] = ARGV[i + 2 * j]
    if #chunk >= 1000 then
      redis.call('ZADD', key, unpack(chunk))
      chunk = {}
    end
  end
  if #chunk > 0 then redis.call('ZADD', key, unpack(chunk)) end
  redis.call('EXPIRE', key, ttl)
  if not redis.call('ZSCORE', complete_key, start) then
    redis.call('ZADD', pending_key, start, start)
  end
  i = i + 2 * n
end
local old = tonumber(redis.call('HGET', closed_key, partition) or '0')
if closed_end > old then redis.call('HSET', closed_key, partition, closed_end) end
local min_closed = nil
for p = 0, partitions - 1 do
  local v = tonumber(redis.call('HGET', closed_key, tostring(p)) or '0')
  if min_closed == nil or v < min_closed then min_closed = v end
end
local complete = redis.call('ZRANGEBYSCORE', pending_key, '-inf', min_closed - window_ms)
for _, start in ipairs(complete) do
  redis.call('ZADD', complete_key, start, start)
  redis.call('ZREM', pending_key, start)
  redis.call('PUBLISH', complete_key, start)
end
if #complete > 0 then
  redis.call('ZREMRANGEBYSCORE', complete_key, '-inf', tonumber(complete[#complete]) - ttl * 1000)
end
return complete
