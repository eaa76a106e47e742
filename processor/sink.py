"""The processor's Quix sink: each partition's records, counted once per checkpoint.

The pipeline hands the sink every event and heartbeat (`take`), and Quix Streams calls
`flush` just before it commits the checkpoint. `take` only keeps ``(offset, event time,
key)``; `flush` counts each partition's records with `processor.windows.tally` and
writes the sums in one fenced step (`wikipulse.store.WindowStore.write`).

When Redis is unreachable, or another writer moved a partition on since this replica
read its progress, the sink raises `SinkBackpressureError`: Quix aborts the checkpoint,
seeks back to the last commit and re-reads it a moment later. The next flush reads the
stored progress again and skips what Redis has counted, so nothing is lost or counted
twice.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from quixstreams.models import HeadersTuples
from quixstreams.sinks import BaseSink, SinkBackpressureError

from processor import metrics
from processor.records import TIME_MS
from processor.windows import tally
from wikipulse.store import Progress, StaleProgress, WindowStore

log = logging.getLogger(__name__)

Pending = list[tuple[int, int, bytes]]


class RedisWindowSink(BaseSink):
    """Counts the judged records (`processor.records.Record`) of every partition.

    ``source`` names the raw topic's identity (its Kafka topic id) in the stored
    progress, so a topic deleted and created again starts from offset 0 afresh instead
    of being taken for a replay of the old one.
    """

    def __init__(
        self,
        redis_url: str,
        key_prefix: str,
        window_ms: int,
        grace_ms: int,
        ttl_seconds: int,
        partitions: int,
        source: str = "",
        backpressure_seconds: float = 2.0,
    ) -> None:
        super().__init__()
        self._url = redis_url
        self._prefix = key_prefix
        self._window_ms = window_ms
        self._grace_ms = grace_ms
        self._ttl = ttl_seconds
        self._partitions = partitions
        self._source = source
        self._retry_after = backpressure_seconds
        self._store: WindowStore | None = None
        self._pending: dict[int, Pending] = {}
        #: each partition's progress and open windows as this replica last read or wrote them
        self._known: dict[int, tuple[Progress, set[int]]] = {}

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

    def take(self, partition: int, offset: int, time_ms: int, key: bytes) -> None:
        """One event or heartbeat of ``partition``, to be counted at the next flush.

        Offsets only grow between two flushes unless Quix went back (a partition lost
        and assigned again without a commit): then the records from ``offset`` on come
        again, and the ones taken before are dropped, so `tally` sees offset order.
        """
        pending = self._pending.get(partition)
        if pending is None:
            pending = self._pending[partition] = []
        elif offset <= pending[-1][0]:
            pending[:] = [record for record in pending if record[0] < offset]
        pending.append((offset, time_ms, key))

    def add(
        self,
        value: Any,
        key: Any,
        timestamp: int,
        headers: HeadersTuples,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        """The `BaseSink` entry, for a judged record (`processor.records.Record`)."""
        self.take(partition, offset, value[TIME_MS], key)

    def on_paused(self) -> None:
        """Another sink was backpressured: this checkpoint is re-read, drop its records."""
        self._pending.clear()

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for partition in sorted(pending):
            try:
                self._write(partition, pending[partition])
            except StaleProgress as exc:
                self._known.pop(partition, None)
                log.warning("%s: re-reading from the last commit", exc)
                raise SinkBackpressureError(retry_after=0.0) from exc
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # the write may have applied before the connection broke: read it again
                self._known.pop(partition, None)
                metrics.REDIS_BACKPRESSURE.inc()
                log.warning(
                    "redis unavailable (%s): pausing for %.0f s",
                    type(exc).__name__,
                    self._retry_after,
                )
                raise SinkBackpressureError(retry_after=self._retry_after) from exc

    def _write(self, partition: int, records: Pending) -> None:
        assert self._store is not None, "setup() runs first"
        known = self._known.get(partition)
        if known is None:
            progress = self._store.progress(partition, self._source)
            known = progress, self._store.open_windows(partition)
        since, open_windows = known
        counted = tally(records, since, window_ms=self._window_ms, grace_ms=self._grace_ms)
        if counted.replayed:
            metrics.REPLAYED.inc(counted.replayed)
            log.info(
                "partition %d: %d records counted before the last commit, skipped",
                partition,
                counted.replayed,
            )
        if counted.progress == since:
            self._known[partition] = known
            return
        still_open = open_windows | counted.counts.keys()
        final = {s for s in still_open if s + self._window_ms <= counted.closed_end}
        finalized, complete = self._store.write(
            partition=partition,
            closed_end=counted.closed_end,
            windows=counted.counts,
            partitions=self._partitions,
            window_ms=self._window_ms,
            ttl_seconds=self._ttl,
            finalize=final,
            progress=(since, counted.progress),
            source=self._source,
        )
        self._known[partition] = counted.progress, still_open - final
        if counted.late:
            metrics.RECORDS.counts["late"] += counted.late
            log.debug("partition %d: %d late events", partition, counted.late)
        metrics.WINDOWS_WRITTEN.inc(finalized)
        metrics.CLOSED_UNTIL.labels(str(partition)).set(counted.closed_end / 1000)
        if complete:
            metrics.WINDOWS_COMPLETE.inc(len(complete))
            log.info("windows complete: %s", ", ".join(map(str, complete)))
