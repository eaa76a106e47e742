"""The processor's Quix sink: each partition's records, counted once per checkpoint,
and recounted from the raw topic when Redis lost them.

The pipeline hands the sink every record it processes (`take`); Quix Streams calls
`flush` just before it commits the checkpoint. `flush` counts each partition's records
with `processor.windows.tally` and writes the sums in one fenced step
(`wikipulse.store.WindowStore.write`), then makes the write durable before Quix
commits the offsets.

**Back-pressure.** When Redis is unreachable, or another writer moved a partition on
since this replica read its progress, the sink raises `SinkBackpressureError`: Quix
aborts the checkpoint, seeks back to its start and reads it again a moment later; the
next flush reads the stored progress again and skips what Redis has counted.

**Redis is a view of the raw topic.** Where Redis holds less than Kafka's group
committed, the partition is counted again from the raw topic (`processor.recount`).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import redis
from quixstreams.models import HeadersTuples
from quixstreams.sinks import BaseSink, SinkBackpressureError

from processor import metrics
from processor.records import FACTS, TIME_MS
from processor.recount import Continuity, Rewind, Seeker
from processor.windows import Taken, tally
from wikipulse.store.values import ROLLUPS, Rollup
from wikipulse.store.window_store import WindowStore
from wikipulse.store.writes import Progress, StaleProgress

log = logging.getLogger(__name__)


class Durability:
    """How a write is made durable before Quix commits the offsets it covers."""

    FSYNC = "fsync"  # the server fsyncs every write (appendonly yes, appendfsync always)
    WAITAOF = "waitaof"  # Redis 7.2+: WAITAOF 1 0 after each flush
    NONE = "none"  # neither: a lost write is recounted from the raw topic


class UnsafeRedis(Exception):
    """A Redis the windows cannot be kept in (it may evict keys)."""


class RedisWindowSink(BaseSink):
    """Counts the records of every partition into Redis (`take`, then `flush`).

    ``source`` names the raw topic's identity (its Kafka topic id): every key of the
    working state is scoped by it (`wikipulse.store.KeyLayout.source`).
    """

    def __init__(
        self,
        redis_url: str,
        key_prefix: str,
        window_ms: int,
        grace_ms: int,
        ttl_seconds: int,
        partitions: int,
        seeker: Seeker,
        source: str = "",
        backpressure_seconds: float = 2.0,
        rollups: tuple[Rollup, ...] = ROLLUPS,
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
        self._rollups = rollups
        self._store: WindowStore | None = None
        self.durability = Durability.NONE
        self._server_checked = False
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
        self._store = WindowStore.connect(self._url, self._prefix)
        try:
            self._check_server()
        except redis.ConnectionError as exc:  # the first flush will back off until it is up
            log.warning("redis not reachable yet: %s", type(exc).__name__)

    def _check_server(self) -> None:
        """What this Redis offers to make a write durable, and that it never evicts the
        working state (an evicted open or final set would publish a window short)."""
        client = self.store.client
        self.durability = _durability(client)
        self._server_checked = True
        try:
            policy = str(client.config_get("maxmemory-policy").get("maxmemory-policy", ""))
        except redis.ResponseError:  # CONFIG disabled (managed Redis): the docs say why
            policy = ""
        if policy and policy != "noeviction":
            # volatile-* too: buckets and published windows carry a TTL, and an evicted
            # bucket still waiting for its windows would be listed complete, short
            raise UnsafeRedis(
                f"redis evicts keys (maxmemory-policy {policy}): the windows' state and "
                "history must never be evicted; use maxmemory-policy noeviction"
            )
        if self.durability == Durability.NONE:
            log.warning(
                "redis neither fsyncs every write (appendfsync always) nor has WAITAOF: a "
                "crash can lose its last writes, which are then recounted from Kafka"
            )

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
        if not self._server_checked and self._pending:
            with contextlib.suppress(redis.ConnectionError):  # the writes below back off
                self._check_server()
        pending, self._pending = self._pending, {}
        dead_lettered, self._dead_lettered = self._dead_lettered, {}
        wrote = False
        for partition in sorted(pending):
            try:
                wrote = self._write(partition, pending[partition], dead_lettered) or wrote
            except Rewind as exc:
                self._known.clear()
                raise SinkBackpressureError(retry_after=0.0) from exc
            except StaleProgress as exc:
                self._known.clear()
                raise SinkBackpressureError(retry_after=0.0) from exc
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # the write may have applied before the connection broke: read it again
                self._known.clear()
                metrics.REDIS_BACKPRESSURE.inc()
                log.warning(
                    "redis unavailable (%s): pausing for %.0f s",
                    type(exc).__name__,
                    self._retry_after,
                )
                raise SinkBackpressureError(retry_after=self._retry_after) from exc
        if wrote and self.durability == Durability.WAITAOF:
            self._wait_for_fsync()

    def _wait_for_fsync(self) -> None:
        """Kafka commits right after this: what it commits must survive a Redis crash."""
        try:
            answer = self.store.client.execute_command(  # type: ignore[no-untyped-call]
                "WAITAOF", 1, 0, 5000
            )
            local = answer[0]
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._known.clear()
            raise SinkBackpressureError(retry_after=self._retry_after) from exc
        if int(local) < 1:
            self._known.clear()
            log.warning("redis did not fsync within 5 s: the checkpoint is read again")
            raise SinkBackpressureError(retry_after=self._retry_after)

    def _write(self, partition: int, records: list[Taken], dead_lettered: dict[int, int]) -> bool:
        """Count ``records`` of ``partition`` into Redis; True when anything was written."""
        store = self.store
        since = self._known.get(partition)
        first = records[0][0]
        if since is not None and first > since.offset + 1:
            # a gap since this replica's last write (the partition went elsewhere and
            # came back, or retention overtook it): what Redis holds is read afresh
            since = None
        if since is None:
            since = store.progress(partition, self._source)
            self.continuity.check(store, partition, since, first)
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
            self._known[partition] = since
            return False
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
        return True

    def forget(self, partitions: list[int]) -> None:
        """``partitions`` were revoked, lost or assigned: what this replica knew of them
        may be stale (another replica counts them meanwhile)."""
        for partition in partitions:
            self._known.pop(partition, None)
        self.continuity.forget(partitions)


def _durability(client: redis.Redis) -> str:
    """What this Redis server offers to make a write durable before the Kafka commit."""
    try:
        config = client.config_get("append*")
    except redis.ResponseError:  # CONFIG is disabled (managed Redis): ask for WAITAOF
        config = {}
    if config.get("appendonly") == "yes" and config.get("appendfsync") == "always":
        return Durability.FSYNC
    version = str(client.info("server").get("redis_version", "0"))
    major, minor = (int(part) for part in [*version.split("."), "0"][:2])
    if (major, minor) >= (7, 2) and config.get("appendonly", "yes") == "yes":
        return Durability.WAITAOF
    return Durability.NONE
