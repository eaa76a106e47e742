"""Writing finalized windows to Redis, idempotently, and publishing complete ones.

Quix Streams flushes sinks *before* it commits a checkpoint, so after a crash the last
checkpoint's windows are written again (at-least-once). The writes are therefore
idempotent: absolute counts with ``ZADD`` (never ``ZINCRBY``) and a per-partition
progress mark that only moves forward. Each server name lives in exactly one raw-topic
partition (the producer keys records by it), so partitions never overwrite each
other's members.

One Lua script per partition batch makes "these counts" and "this partition has
finalized up to here" a single atomic step, and decides in the same step which
windows have become complete (see `processor.keys` for the rule). A window is
therefore never indexed before every partition's counts for it are in, and replays
and rebalances converge to the same state.

When Redis is unreachable the sink raises `SinkBackpressureError`: Quix pauses the
partitions, drops the uncommitted batch and re-reads it later, so nothing is lost.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import redis
from quixstreams.sinks import BatchingSink, SinkBackpressureError, SinkBatch

from processor import metrics
from processor.keys import KeyLayout
from wikipulse.events import HEARTBEAT_KEY

log = logging.getLogger(__name__)

HEARTBEAT = HEARTBEAT_KEY.encode()

# KEYS: closed, pending, index
# ARGV: window key prefix, partition, closed_end, partitions, window_ms, ttl_s, channel,
#       then for each window: start, n, member1, count1, ... membern, countn
WRITE_WINDOWS = """
local closed_key, pending_key, index_key = KEYS[1], KEYS[2], KEYS[3]
local window_prefix, partition = ARGV[1], ARGV[2]
local closed_end, partitions = tonumber(ARGV[3]), tonumber(ARGV[4])
local window_ms, ttl, channel = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local i = 8
while i <= #ARGV do
  local start, n = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  local key = window_prefix .. start
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
  if not redis.call('ZSCORE', index_key, start) then
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
  redis.call('ZADD', index_key, start, start)
  redis.call('ZREM', pending_key, start)
  redis.call('PUBLISH', channel, start)
end
if #complete > 0 then
  redis.call('ZREMRANGEBYSCORE', index_key, '-inf', tonumber(complete[#complete]) - ttl * 1000)
end
return complete
"""


class RedisWindowSink(BatchingSink):
    """Receives ``{"start", "end", "value"}`` window results keyed by server name."""

    def __init__(
        self,
        redis_url: str,
        keys: KeyLayout,
        window_ms: int,
        ttl_seconds: int,
        partitions: int,
        backpressure_seconds: float = 2.0,
    ) -> None:
        super().__init__()
        self._url = redis_url
        self._keys = keys
        self._window_ms = window_ms
        self._ttl = ttl_seconds
        self._partitions = partitions
        self._retry_after = backpressure_seconds
        self._redis: redis.Redis | None = None
        self._script: Any = None

    def setup(self) -> None:
        self._redis = redis.Redis.from_url(
            self._url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=15
        )
        self._script = self._redis.register_script(WRITE_WINDOWS)
        try:
            self._redis.ping()
        except redis.RedisError as exc:  # the first flush will back off until it is up
            log.warning("redis not reachable yet: %s", type(exc).__name__)

    def write(self, batch: SinkBatch) -> None:
        windows: dict[int, dict[str, int]] = defaultdict(dict)
        closed_end = 0
        for item in batch:
            result = item.value
            closed_end = max(closed_end, result["end"])
            if item.key == HEARTBEAT:
                continue
            key = item.key.decode() if isinstance(item.key, bytes) else str(item.key)
            windows[result["start"]][key] = result["value"]
        if not closed_end:
            return
        args: list[Any] = [
            self._keys.window_prefix,
            batch.partition,
            closed_end,
            self._partitions,
            self._window_ms,
            self._ttl,
            self._keys.channel,
        ]
        for start in sorted(windows):
            members = windows[start]
            args += [start, len(members)]
            for member, count in members.items():
                args += [member, count]
        try:
            complete = self._script(
                keys=[self._keys.closed, self._keys.pending, self._keys.index], args=args
            )
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            metrics.REDIS_BACKPRESSURE.inc()
            log.warning(
                "redis unavailable (%s): pausing for %.0f s", type(exc).__name__, self._retry_after
            )
            raise SinkBackpressureError(retry_after=self._retry_after) from exc
        metrics.WINDOWS_WRITTEN.inc(len(windows))
        metrics.CLOSED_UNTIL.labels(str(batch.partition)).set(closed_end / 1000)
        if complete:
            metrics.WINDOWS_COMPLETE.inc(len(complete))
            log.info("windows complete: %s", ", ".join(s.decode() for s in complete))
