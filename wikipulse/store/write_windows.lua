-- One partition's batch, applied atomically: the whole window lifecycle lives here.
-- keys.py (beside this file) builds every key and writes.py encodes the batch;
-- docs/architecture.md has the table of keys ("The Redis contract").
--
-- KEYS: 1 complete index (zset; also the pub/sub channel), 2 partial index (zset),
--       3 meta (hash), then the raw topic's (the source's) state: 4 progress (hash),
--       5 closed marks (hash), 6 partial marks (hash), 7 pending (zset),
--       8 this partition's open window starts (zset)
-- ARGV[1]: the batch as JSON (`WindowWriter.write` in writes.py): partition, partitions,
--       window_ms, ttl, source, closed_end, fence {expected, offset, time} or absent,
--       partial {from, till} or absent, windows {start: {wiki: count}}, breakdowns
--       {start: {wiki: [the BREAKDOWN values]}}, and the key prefixes open, final,
--       window, open_breakdown, final_breakdown and breakdown (each + start); rollups
--       [{ms, ttl}] and keys.rollups [{bucket (+ start), complete, partial, pending}].
-- Numbers that name keys (window starts) travel as strings.
--
-- 1. Fence: the batch applies only while the partition's stored offset is the one the
--    writer read, and moves it on in the same step; otherwise nothing changes and the
--    stored progress is returned ({'stale', offset, time}).
-- 2. Counts are added to the partition's open windows (a hash per window), breakdowns
--    to its open breakdowns (a hash per window: wiki -> comma-separated integers).
-- 3. The partition's open windows that its clock closed (start + window <= closed_end)
--    are added into the source's final sorted set of the window (ZINCRBY: a wiki counted
--    in two partitions adds up). A window published complete already is never changed:
--    those events are returned as `dropped`. Breakdowns go the same way, into the
--    source's final breakdown hash of the window.
-- 4. The partition's closed mark moves forward, never back.
-- 5. A window is published when every partition of the source has closed past it: its
--    final set becomes `window:S`, its final breakdowns (with their sum over all wikis
--    under the empty name) `breakdown:S`, and S enters the complete index (announced once), or
--    the partial index when a partition's partial mark (records before it not counted:
--    the first records of a stream, a retention cut) overlaps it. A partial window may
--    later be replaced by a complete count; a complete one never changes.
-- 6. Rollups into buckets of several resolutions (see below).
-- Returns {'ok', finalized, {completed}, dropped, {partial}}.
local complete_key, partial_key, meta_key = KEYS[1], KEYS[2], KEYS[3]
local progress_key, closed_key, marks_key = KEYS[4], KEYS[5], KEYS[6]
local pending_key, open_key = KEYS[7], KEYS[8]
local b = cjson.decode(ARGV[1])
local p = b.partition
local window_ms, closed_end = tonumber(b.window_ms), tonumber(b.closed_end)
local function int(x) return string.format('%d', x) end
local function interval(text)
  local from, till = string.match(text, '^(%-?%d+):(%-?%d+)$')
  return tonumber(from), tonumber(till)
end
-- a breakdown value: comma-separated integers (`BREAKDOWN` order, values.py)
local function unpack_values(text)
  local values = {}
  for x in string.gmatch(text, '[^,]+') do values[#values + 1] = tonumber(x) end
  return values
end
local function pack_values(values)
  local out = {}
  for i = 1, #values do out[i] = int(values[i]) end
  return table.concat(out, ',')
end
local function add_values(into, values)
  for i = 1, #values do into[i] = (into[i] or 0) + values[i] end
  return into
end
-- adds `values` (a table) to the breakdown `field` of hash `key`
local function add_breakdown(key, field, values)
  local old = redis.call('HGET', key, field)
  local sum = old and unpack_values(old) or {}
  redis.call('HSET', key, field, pack_values(add_values(sum, values)))
end

if type(b.fence) == 'table' then
  local stored = redis.call('HGET', progress_key, p .. ':offset') or '-1'
  if stored ~= b.fence.expected then
    return {'stale', stored, redis.call('HGET', progress_key, p .. ':time') or ''}
  end
  redis.call('HSET', progress_key, p .. ':offset', b.fence.offset, p .. ':time', b.fence.time)
end
redis.call('HSET', meta_key, 'window_ms', b.window_ms, 'partitions', b.partitions,
  'source', b.source)

if type(b.partial) == 'table' then
  local from, till = tonumber(b.partial.from), tonumber(b.partial.till)
  local old = redis.call('HGET', marks_key, p)
  if old then
    local f, t = interval(old)
    from, till = math.min(from, f), math.max(till, t)
  end
  redis.call('HSET', marks_key, p, int(from) .. ':' .. int(till))
end

for start, members in pairs(b.windows) do
  local key = b.keys.open .. start
  for wiki, n in pairs(members) do redis.call('HINCRBY', key, wiki, n) end
  redis.call('ZADD', open_key, start, start)
end
for start, members in pairs(b.breakdowns or {}) do
  local key = b.keys.open_breakdown .. start
  for wiki, values in pairs(members) do add_breakdown(key, wiki, values) end
end

local finalized, dropped = 0, 0
-- windows at or before the horizon left the indexes (their TTL): whether they were
-- published can no longer be told, so they are never published (or rolled up) again
local horizon = tonumber(redis.call('HGET', meta_key, 'horizon') or '-1')
local due = redis.call('ZRANGEBYSCORE', open_key, '-inf', int(closed_end - window_ms))
for _, start in ipairs(due) do
  local key, parts = b.keys.open .. start, b.keys.open_breakdown .. start
  local counts = redis.call('HGETALL', key)
  if redis.call('ZSCORE', complete_key, start) or tonumber(start) <= horizon then
    for j = 2, #counts, 2 do dropped = dropped + tonumber(counts[j]) end
  elseif #counts > 0 then
    local final = b.keys.final .. start
    for j = 1, #counts, 2 do redis.call('ZINCRBY', final, counts[j + 1], counts[j]) end
    local final_parts = b.keys.final_breakdown .. start
    local found = redis.call('HGETALL', parts)
    for j = 1, #found, 2 do
      add_breakdown(final_parts, found[j], unpack_values(found[j + 1]))
    end
    redis.call('ZADD', pending_key, start, start)
    finalized = finalized + 1
  end
  redis.call('DEL', key, parts)
end
if #due > 0 then redis.call('ZREMRANGEBYSCORE', open_key, '-inf', int(closed_end - window_ms)) end

local first_of_source = redis.call('EXISTS', closed_key) == 0
local old = tonumber(redis.call('HGET', closed_key, p) or '0')
if closed_end > old then redis.call('HSET', closed_key, p, int(closed_end)) end
local min_closed = nil
for q = 0, tonumber(b.partitions) - 1 do
  local v = tonumber(redis.call('HGET', closed_key, tostring(q)) or '0')
  if min_closed == nil or v < min_closed then min_closed = v end
end

local marks = redis.call('HGETALL', marks_key)
local completed, partial = {}, {}
local ready = redis.call('ZRANGEBYSCORE', pending_key, '-inf', int(min_closed - window_ms))
for _, start in ipairs(ready) do
  local s = tonumber(start)
  local final, window = b.keys.final .. start, b.keys.window .. start
  local final_parts, parts = b.keys.final_breakdown .. start, b.keys.breakdown .. start
  if redis.call('ZSCORE', complete_key, start) or redis.call('EXISTS', final) == 0 then
    -- published complete before (another source), or nothing
    redis.call('DEL', final, final_parts)
  else
    local lacking = false
    for j = 2, #marks, 2 do
      local from, till = interval(marks[j])
      if from < s + window_ms and s < till then lacking = true end
    end
    redis.call('RENAME', final, window)
    redis.call('EXPIRE', window, b.ttl)
    local found, all = redis.call('HGETALL', final_parts), {}
    for j = 2, #found, 2 do add_values(all, unpack_values(found[j])) end
    if #found > 0 then
      redis.call('HSET', final_parts, '', pack_values(all))
      redis.call('RENAME', final_parts, parts)
      redis.call('EXPIRE', parts, b.ttl)
    else
      redis.call('DEL', parts)  -- a partial window replaced: no stale breakdown stays
    end
    if lacking then
      redis.call('ZADD', partial_key, start, start)
      partial[#partial + 1] = start
    else
      redis.call('ZREM', partial_key, start)
      redis.call('ZADD', complete_key, start, start)
      redis.call('PUBLISH', complete_key, start)
      completed[#completed + 1] = start
    end
  end
  redis.call('ZREM', pending_key, start)
end
if #ready > 0 then
  local trimmed = tonumber(ready[#ready]) - tonumber(b.ttl) * 1000
  redis.call('ZREMRANGEBYSCORE', complete_key, '-inf', int(trimmed))
  redis.call('ZREMRANGEBYSCORE', partial_key, '-inf', int(trimmed))
  if trimmed > horizon then redis.call('HSET', meta_key, 'horizon', int(trimmed)) end
end
for j = 1, #marks, 2 do
  local _, till = interval(marks[j + 1])
  if till <= min_closed - window_ms then redis.call('HDEL', marks_key, marks[j]) end
end

-- 6. Rollups: each window published complete is added to its bucket of every resolution
--    (b.rollups[i].ms long, aligned to the epoch; b.keys.rollups[i] names its keys): a
--    hash like breakdown:S, the counts taken from window:S. Adding happens only where a
--    window is published complete, which happens once (and never again once it left
--    the index: the horizon above). A bucket is judged once every partition has closed
--    past its end: complete unless one of its windows was published partial (a mark that
--    stays), else partial. A bucket waits without a TTL; it gets its resolution's once
--    judged. A new source's first write makes every bucket still waiting partial: the
--    previous source may have finalized windows of it that it never published.
local function add_window(start, bucket)
  local counts = redis.call('ZRANGE', b.keys.window .. start, 0, -1, 'WITHSCORES')
  local parts = b.keys.breakdown .. start
  local all = {}
  for j = 1, #counts, 2 do
    local found = redis.call('HGET', parts, counts[j])
    local values = found and unpack_values(found) or {0}
    values[1] = tonumber(counts[j + 1])  -- the count is the window's, always
    add_breakdown(bucket, counts[j], values)
    add_values(all, values)
  end
  if #counts > 0 then add_breakdown(bucket, '', all) end
  redis.call('PERSIST', bucket)  -- waits again: nothing waiting expires
end
for i, r in ipairs(b.rollups or {}) do
  local len, ttl, k = tonumber(r.ms), tonumber(r.ttl), b.keys.rollups[i]
  if first_of_source then
    for _, start in ipairs(redis.call('ZRANGE', k.pending, 0, -1)) do
      redis.call('ZADD', k.partial, start, start)
    end
  end
  for _, published in ipairs(completed) do
    local start = int(tonumber(published) - tonumber(published) % len)
    add_window(published, b.keys.rollups[i].bucket .. start)
    redis.call('ZADD', k.pending, start, start)
  end
  for _, published in ipairs(partial) do
    local start = int(tonumber(published) - tonumber(published) % len)
    redis.call('ZREM', k.complete, start)  -- a bucket never lists complete what it lacks
    redis.call('ZADD', k.partial, start, start)
  end
  local due = redis.call('ZRANGEBYSCORE', k.pending, '-inf', int(min_closed - len))
  for _, start in ipairs(due) do
    if not redis.call('ZSCORE', k.partial, start) then
      redis.call('ZADD', k.complete, start, start)
    end
    redis.call('EXPIRE', b.keys.rollups[i].bucket .. start, ttl)
    redis.call('ZREM', k.pending, start)
  end
  if #due > 0 then
    local horizon_of = int(tonumber(due[#due]) - ttl * 1000)
    redis.call('ZREMRANGEBYSCORE', k.complete, '-inf', horizon_of)
    redis.call('ZREMRANGEBYSCORE', k.partial, '-inf', horizon_of)
  end
end
return {'ok', finalized, completed, dropped, partial}
