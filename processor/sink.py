"""The processor's Quix sink: each partition's records, counted once per checkpoint,
and recounted from the raw topic when Redis lost them.

The pipeline hands the sink every record it processes (`take`); Quix Streams calls
`flush` just before it commits the checkpoint. `flush` counts each partition's records
with `processor.windows.tally` and writes the sums in one fenced step
(`wikipulse.store.writes.WindowWriter.write`), then makes the writes durable before Quix
commits the offsets (`processor.durability`: on the disk, on a replica).

**Back-pressure.** When Redis is unreachable or between primaries (a failover, a
primary cut off from its replicas: `wikipulse.redis_client.transient`), when its writes
cannot be confirmed durable, when Kafka cannot say where a partition's counting goes on
(its leader moving), or when another writer moved a partition on since this
replica read its progress, the sink raises `SinkBackpressureError`: Quix aborts the
checkpoint, seeks back to its start and reads it again a moment later; the next flush
reads the stored progress again (from the new primary, after a failover) and skips
what Redis has counted.

**Redis is a view of the raw topic.** Where Redis holds less than Kafka's group
committed, the partition is counted again from the raw topic (`processor.recount`).
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from confluent_kafka import KafkaException
from quixstreams.models import HeadersTuples
from quixstreams.sinks import BaseSink, SinkBackpressureError

from processor import metrics
from processor.durability import Durability, NotDurable, check_server, confirm, primary_of
from processor.records import FACTS, TIME_MS
from processor.recount import Continuity, Rewind, Seeker
from processor.windows import Taken, tally
from wikipulse import redis_client
from wikipulse.settings import RedisSettings
from wikipulse.store.values import ROLLUPS, Rollup
from wikipulse.store.window_store import WindowStore
from wikipulse.store.writes import Progress, StaleProgress

log = logging.getLogger(__name__)


class RedisWindowSink(BaseSink):
    """Counts the records of every partition into Redis (`take`, then `flush`).

    ``source`` names the raw topic's identity (its Kafka topic id): every key of the
    working state is scoped by it (`wikipulse.store.keys.KeyLayout.source`).
    """

    def __init__(
        self,
        redis: RedisSettings,
        window_ms: int,
        grace_ms: int,
        ttl_seconds: int,
        partitions: int,
        seeker: Seeker,
        source: str = "",
        backpressure_seconds: float = 2.0,
        rollups: tuple[Rollup, ...] = ROLLUPS,
        wait_replicas: int | None = None,
        wait_timeout_seconds: float = 5.0,
    ) -> None:
        super().__init__()
        self._redis = redis
        self._wait_replicas = wait_replicas
        self._wait_timeout = wait_timeout_seconds
        self._window_ms = window_ms
        self._grace_ms = grace_ms
        self._ttl = ttl_seconds
        self._partitions = partitions
        self._source = source
        self._retry_after = backpressure_seconds
        self._rollups = rollups
        self._store: WindowStore | None = None
        self.durability = Durability()
        #: the failovers this process had seen when it last checked the server (None:
        #: not checked yet); a new primary may be set up otherwise
        self._checked_at: float | None = None
        self._pending: dict[int, list[Taken]] = {}
        #: each partition's progress as this replica last read or wrote it
        self._known: dict[int, Progress] = {}
        #: where counting goes on from Redis, and the recounts (`processor.recount`)
        self.continuity = Continuity(seeker, source)
        #: per partition, the first offset whose dead letter is not in Kafka yet
        self.resend_from = self.continuity.resend_from
        #: per partition, the lowest offset dead-lettered in this checkpoint
        self._dead_lettered: dict[int, int] = {}

    @property
    def store(self) -> WindowStore:
        assert self._store is not None, "setup() runs first"
        return self._store

    def setup(self) -> None:
        self._store = WindowStore.connect(self._redis)
        try:
            self._check_server()
        except redis.RedisError as exc:  # the first flush will back off until it is up
            if not redis_client.transient(exc):
                raise
            log.warning("redis not reachable yet: %s", type(exc).__name__)

    def _check_server(self) -> None:
        """What this Redis offers to make a write durable, and that it never evicts
        (`processor.durability.check_server`); again after a failover."""
        failovers = redis_client.failovers_seen()
        self.durability = check_server(
            self.store.client,
            self._wait_replicas,
            sentinel=bool(self._redis.sentinels),
            timeout_seconds=self._wait_timeout,
        )
        self._checked_at = failovers

    def take(
        self, partition: int, offset: int, time_ms: int, key: bytes | None, facts: bytes = b""
    ) -> None:
        """One processed record of ``partition`` (`processor.windows.Taken`), counted at
        the next flush.

        Offsets only grow between two flushes unless Quix went back (a partition lost
        and assigned again without a commit): then the records from ``offset`` on come
        again, and the ones taken before are dropped, so `tally` sees offset order.
        """
        pending = self._pending.get(partition)
        if pending is None:
            pending = self._pending[partition] = []
        elif offset <= pending[-1][0]:
            pending[:] = [record for record in pending if record[0] < offset]
        pending.append((offset, time_ms, key, facts))

    def dead_lettered(self, partition: int, offset: int) -> None:
        """The pipeline wrote a dead letter for this record, in this checkpoint."""
        if offset < self._dead_lettered.get(partition, offset + 1):
            self._dead_lettered[partition] = offset

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
        """`BaseSink` requires it; the pipeline calls `take` (one step less per record)."""
        self.take(partition, offset, value[TIME_MS], key, value[FACTS])

    def on_paused(self) -> None:
        """The checkpoint is void (another sink backpressured, or the partitions were
        lost): its records come again, drop them and what was read of Redis."""
        self._pending.clear()
        self._known.clear()
        self._dead_lettered.clear()

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        dead_lettered, self._dead_lettered = self._dead_lettered, {}
        if not pending:
            return
        # a flush Quix leaves behind on a revoke may go on after the next assignment:
        # what it learns is kept only while its own assignment lasts
        assignment = self.continuity.assignment
        try:
            if self._checked_at != redis_client.failovers_seen():
                self._check_server()  # first, or a new primary
            # the confirmation must come from the primary the writes went to
            origin = primary_of(self.store.client) if self.durability.confirms else None
            for partition in sorted(pending):
                self._write(partition, pending[partition], dead_lettered, assignment)
            # Kafka commits right after this: what it commits must survive Redis's loss
            marker = self.store.keys.source(self._source).durable
            confirm(self.store.client, self.durability, marker, origin)
        except (Rewind, StaleProgress) as exc:
            self._known.clear()
            raise SinkBackpressureError(retry_after=0.0) from exc
        except NotDurable as exc:
            self._known.clear()
            metrics.REDIS_BACKPRESSURE.inc()
            log.warning("%s: the checkpoint is read again", exc)
            raise SinkBackpressureError(retry_after=self._retry_after) from exc
        except redis.RedisError as exc:
            if not redis_client.transient(exc):
                raise
            # a write may have applied before the connection broke: read it again
            self._known.clear()
            metrics.REDIS_BACKPRESSURE.inc()
            log.warning(
                "redis unavailable (%s: %s): pausing for %.0f s",
                type(exc).__name__,
                str(exc)[:120],
                self._retry_after,
            )
            raise SinkBackpressureError(retry_after=self._retry_after) from exc
        except KafkaException as exc:
            # where counting goes on is asked of Kafka (the group's committed offset, the
            # log's start): a partition between leaders answers "not leader" or times out
            self._known.clear()
            log.warning("kafka did not say where counting goes on (%s): read again", exc)
            raise SinkBackpressureError(retry_after=self._retry_after) from exc

    def _write(
        self, partition: int, records: list[Taken], dead_lettered: dict[int, int], assignment: int
    ) -> None:
        """Count ``records`` of ``partition`` into Redis (nothing to write when Redis
        counted them all before: a replay), in the flush of ``assignment``."""
        store = self.store
        since = self._known.get(partition)
        first = records[0][0]
        if since is not None and first > since.offset + 1:
            # a gap since this replica's last write (the partition went elsewhere and
            # came back, or retention overtook it): what Redis holds is read afresh
            since = None
        if since is None:
            since = store.progress(partition, self._source)
            self.continuity.check(store, partition, since, first, assignment)
            lowest = dead_lettered.get(partition)
            if lowest is not None and lowest < self.resend_from.get(partition, -1):
                # this checkpoint wrote dead letters that Kafka holds already (a recount
                # committed part-way before this replica took the partition): read again
                log.warning("partition %d: dead letters written before; re-reading", partition)
                raise Rewind(partition)
        counted = tally(records, since, window_ms=self._window_ms, grace_ms=self._grace_ms)
        if counted.replayed:
            metrics.REPLAYED.inc(counted.replayed)
            log.info(
                "partition %d: %d records counted before the last commit, skipped",
                partition,
                counted.replayed,
            )
        if counted.progress == since:
            with self.continuity.current(assignment):
                self._known[partition] = since
            return
        with self.continuity.current(assignment):  # what this flush's check found
            partial = self.continuity.partial_for(
                partition, counted.first_time_ms, self._window_ms, self._grace_ms
            )
        try:
            written = store.write(
                counted.batch(partition, since, partial),
                partitions=self._partitions,
                window_ms=self._window_ms,
                ttl_seconds=self._ttl,
                source=self._source,
                rollups=self._rollups,
            )
        except StaleProgress as exc:
            if exc.stored.offset < since.offset:
                metrics.REDIS_WENT_BACK.inc()
                log.error(
                    "partition %d: redis went back: it holds offset %d, this replica wrote "
                    "%d; recounting from the raw topic",
                    partition,
                    exc.stored.offset,
                    since.offset,
                )
            else:
                log.warning("%s: re-reading from the last commit", exc)
            raise
        with self.continuity.current(assignment):
            self._known[partition] = counted.progress
            self.continuity.written(partition, counted.progress, partial)
        if counted.late:
            metrics.RECORDS.counts["late"] += counted.late
            log.debug("partition %d: %d late events", partition, counted.late)
        if written.dropped:
            metrics.ALREADY_FINAL.inc(written.dropped)
        metrics.WINDOWS_WRITTEN.inc(written.finalized)
        metrics.CLOSED_UNTIL.labels(str(partition)).set(counted.closed_end / 1000)
        if written.completed:
            metrics.WINDOWS_COMPLETE.inc(len(written.completed))
            log.info("windows complete: %s", ", ".join(map(str, written.completed)))
        if written.partial:
            metrics.WINDOWS_PARTIAL.inc(len(written.partial))
            log.warning("windows published partial: %s", ", ".join(map(str, written.partial)))

    def forget(self, partitions: list[int]) -> None:
        """``partitions`` were revoked, lost or assigned: what this replica knew of them
        may be stale (another replica counts them meanwhile). The assignment ends first,
        so a flush left behind cannot record anything after this (`Continuity`)."""
        self.continuity.forget(partitions)
        for partition in partitions:
            self._known.pop(partition, None)
