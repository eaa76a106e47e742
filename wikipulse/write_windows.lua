-- One partition's batch of counts, applied atomically (see wikipulse/store.py).
--
-- KEYS: closed (hash), pending (zset), complete (zset; also the pub/sub channel), meta (hash),
--       progress (hash), open (zset: this partition's open window starts)
-- ARGV: partition, closed_end, partitions, window_ms, ttl_s, progress field,
--       expected offset ('' = unfenced), new offset, new event time, number of windows,
--       then for each window counted: open window key, start, n, member1, count1, ...,
--       then for each window to finalize: open window key, window key, start
--
-- The counts are added to the partition's open windows (a hash per window); each window
-- to finalize (the writer names those that end at or before closed_end) then moves its
-- counts into the window's sorted set, which never changes again. Idempotence comes from
-- the fence: the batch applies only if the partition's stored offset is the one the
-- writer read, and it moves that offset on in the same step, so a batch replayed after
-- a crash, or written by a replica that lost the partition, is refused
-- ({'stale', stored offset}) and changes nothing.
-- A window becomes complete (indexed and announced, once) when every partition has
-- closed past its end. Returns {'ok', windows finalized, {starts completed}}.
local closed_key, pending_key, complete_key = KEYS[1], KEYS[2], KEYS[3]
local meta_key, progress_key, open_key = KEYS[4], KEYS[5], KEYS[6]
local partition = ARGV[1]
local closed_end, partitions = tonumber(ARGV[2]), tonumber(ARGV[3])
local window_ms, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local field, expected = ARGV[6], ARGV[7]
if expected ~= '' then
  local stored = redis.call('HGET', progress_key, field .. ':offset') or '-1'
  if stored ~= expected then return {'stale', stored} end
  redis.call('HSET', progress_key, field .. ':offset', ARGV[8], field .. ':time', ARGV[9])
end
redis.call('HSET', meta_key, 'window_ms', window_ms, 'partitions', partitions)
local i = 11
for _ = 1, tonumber(ARGV[10]) do
  local key, start, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  for j = 0, n - 1 do
    redis.call('HINCRBY', key, ARGV[i + 2 * j], ARGV[i + 2 * j + 1])
  end
  redis.call('EXPIRE', key, ttl)
  redis.call('ZADD', open_key, start, start)
  i = i + 2 * n
end
local finalized = 0
while i <= #ARGV do
  local key, window, start = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  local counts = redis.call('HGETALL', key)
  if #counts > 0 then
    local chunk = {}
    for j = 1, #counts, 2 do
      chunk[#chunk + 1] = counts[j + 1]
      chunk[#chunk + 1] = counts[j]
      if #chunk >= 1000 then
        redis.call('ZADD', window, unpack(chunk))
        chunk = {}
      end
    end
    if #chunk > 0 then redis.call('ZADD', window, unpack(chunk)) end
    redis.call('EXPIRE', window, ttl)
    if not redis.call('ZSCORE', complete_key, start) then
      redis.call('ZADD', pending_key, start, start)
    end
    finalized = finalized + 1
  end
  redis.call('DEL', key)
  redis.call('ZREM', open_key, start)
end
if redis.call('EXISTS', open_key) == 1 then redis.call('EXPIRE', open_key, ttl) end
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
return {'ok', finalized, complete}
