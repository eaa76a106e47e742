"""The processor's Quix sink: each partition's finalized windows into the window store.

Quix Streams flushes sinks *before* it commits a checkpoint, so after a crash the last
checkpoint's windows are written again (at-least-once); `wikipulse.store.WindowStore`
makes that write idempotent and decides which windows have become complete.

When Redis is unreachable the sink raises `SinkBackpressureError`: Quix pauses the
partitions, drops the uncommitted batch and re-reads it later, so nothing is lost.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import redis
from quixstreams.sinks import BatchingSink, SinkBackpressureError, SinkBatch

from processor import metrics
from wikipulse.events import HEARTBEAT_KEY
from wikipulse.store import WindowStore

log = logging.getLogger(__name__)

HEARTBEAT = HEARTBEAT_KEY.encode()


class RedisWindowSink(BatchingSink):
    """Receives ``{"start", "end", "value"}`` window results keyed by server name.

    A heartbeat's result carries no count; its ``end`` is what tells the store how far
    the partition has finalized.
    """

    def __init__(
        self,
        redis_url: str,
        key_prefix: str,
        window_ms: int,
        ttl_seconds: int,
        partitions: int,
        backpressure_seconds: float = 2.0,
    ) -> None:
        super().__init__()
        self._url = redis_url
        self._prefix = key_prefix
        self._window_ms = window_ms
        self._ttl = ttl_seconds
        self._partitions = partitions
        self._retry_after = backpressure_seconds
        self._store: WindowStore | None = None

    def setup(self) -> None:
        self._store = WindowStore.connect(self._url, self._prefix)
        try:
            recorded = self._store.recorded()
        except redis.RedisError as exc:  # the first flush will back off until it is up
            log.warning("redis not reachable yet: %s", type(exc).__name__)
            return
        if recorded and recorded != (self._window_ms, self._partitions):
            log.warning(
                "this prefix held %d ms windows over %d partitions; from now on %d ms over %d",
                *recorded,
                self._window_ms,
                self._partitions,
            )

    def write(self, batch: SinkBatch) -> None:
        assert self._store is not None, "setup() runs first"
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
        try:
            complete = self._store.write(
                partition=batch.partition,
                closed_end=closed_end,
                windows=windows,
                partitions=self._partitions,
                window_ms=self._window_ms,
                ttl_seconds=self._ttl,
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
            log.info("windows complete: %s", ", ".join(map(str, complete)))
