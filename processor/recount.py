"""Recounting from the raw topic: where a partition's counting goes on from what Redis
holds, and seeking back when Redis holds less than Kafka's group committed.

Kafka's committed offset of a partition is never ahead of what Redis holds, since the
sink writes (durably) before Quix commits. When it is (Redis restarted from an older
snapshot, failed over to a lagging replica, or lost everything), the partition is sought
back to where Redis stops (`Seeker`) and counted again, exactly once: the fence and the
stored clock are Redis's own, so the recount continues them. Dead letters of the records
read again are not written twice (`resend_from`). Records the raw topic no longer holds
(retention) cannot be counted: the windows they belong to are published partial, never
complete (`lacking`, `partial_for`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from processor import metrics
from processor.windows import lacking
from wikipulse.store.window_store import WindowStore
from wikipulse.store.writes import Progress

log = logging.getLogger(__name__)


class Seeker(Protocol):
    """What a recount needs to know of, and do to, the consumer of the raw topic."""

    def committed(self, partition: int) -> int | None:
        """The consumer group's committed offset (the next to read); None if none."""

    def low_watermark(self, partition: int) -> int:
        """The oldest offset the raw topic still holds."""

    def rewind(self, partition: int, offset: int) -> None:
        """Make the seek that follows a back-pressure of this checkpoint go to ``offset``
        for ``partition`` instead of the checkpoint's start."""


class Rewind(Exception):
    """A partition was sought back to be counted again: this checkpoint is void."""


class Forgotten(Rewind):
    """The partitions were revoked or assigned while this flush ran (a flush Quix left
    behind on a revoke, in its own thread): what it learnt is of a past assignment."""


class Continuity:
    """Per partition, what this replica knows of where counting goes on from Redis.

    **Assignments.** What is known holds for one assignment of the partitions: a revoke
    or an assignment (`forget`) starts a new one. A flush may outlive its assignment:
    on a revoke Quix flushes in a thread joined for a bounded time, and leaves it
    running when the time is up. That flush must not leave what it learns late for the
    assignment after (an offset "sought already" would let the next checkpoint skip
    records Redis lacks): every change is made under `current`, which refuses a flush
    of an earlier assignment (`Forgotten`).
    """

    def __init__(self, seeker: Seeker, source: str) -> None:
        self._seeker = seeker
        self._source = source
        #: the assignment what is known holds for; `forget` starts the next
        self.assignment = 0
        self._lock = threading.RLock()
        #: partitions whose next counted record starts without the records before it:
        #: the progress it counts on from, and whether records were deleted (a cut)
        self.lacking: dict[int, tuple[Progress, bool]] = {}
        #: per partition, the offset it was last sought back to
        self._sought: dict[int, int] = {}
        #: per partition, the first offset whose dead letter is not in Kafka yet
        self.resend_from: dict[int, int] = {}
        #: per partition being recounted, the offset Kafka's group had committed
        self._recount_until: dict[int, int] = {}

    @contextmanager
    def current(self, assignment: int) -> Iterator[None]:
        """Holds off `forget` while what a flush of ``assignment`` learnt is recorded;
        raises `Forgotten` if a revoke or an assignment came in between."""
        with self._lock:
            if assignment != self.assignment:
                raise Forgotten(assignment)
            yield

    def check(
        self,
        store: WindowStore,
        partition: int,
        since: Progress,
        first: int,
        assignment: int | None = None,
    ) -> None:
        """Check that the records read go on where Redis stops, when this replica reads a
        partition's progress afresh; seek back when they do not.

        ``first`` is the offset of the first record of this checkpoint. Redis holds the
        records up to ``since.offset``, so the next to count is the one after, or the
        log's first when retention deleted it (``target``). A checkpoint that starts
        past ``target`` skips records Redis does not hold (it lost writes, or the
        partition came back to this replica after others counted it): the partition is
        sought back to ``target``. Offsets may have gaps that hold no record (Kafka's
        transaction markers): when a seek to ``target`` still starts past it, the gap
        holds nothing, and counting goes on.

        ``assignment`` is the one the flush began in (`assignment` now by default): Kafka
        is asked first, and nothing is changed if it ended meanwhile.
        """
        if assignment is None:
            assignment = self.assignment
        seeker = self._seeker
        low = seeker.low_watermark(partition)
        committed = seeker.committed(partition)
        dead_letters_until = store.dead_letters_until(partition, self._source)
        with self.current(assignment):
            self._check(store, partition, since, first, low, committed, dead_letters_until)

    def _check(
        self,
        store: WindowStore,
        partition: int,
        since: Progress,
        first: int,
        low: int,
        committed: int | None,
        dead_letters_until: int,
    ) -> None:
        seeker = self._seeker
        following = since.offset + 1
        target = max(following, low)
        cut = following < low  # records deleted by retention before they were counted
        if since.offset < 0 or since.time_ms is None or cut:
            # counting starts without the records before: nothing counted yet (a stream's
            # start when nothing was ever deleted), or records gone before they counted
            if cut and partition not in self.lacking:
                metrics.UNCOUNTABLE.inc(low - following)
                log.error(
                    "partition %d: offsets %d to %d were deleted by retention before they "
                    "were counted; their windows are published partial",
                    partition,
                    following,
                    low - 1,
                )
            self.lacking[partition] = (since, cut or low > 0)
        else:
            self.lacking.pop(partition, None)
        # the dead letters of every record below the committed offset are in Kafka, and
        # below what a recount recorded (it may have committed lower since)
        written = max(
            committed if committed is not None else -1,
            dead_letters_until,
        )
        self.resend_from[partition] = max(self.resend_from.get(partition, -1), written)
        if first <= target:
            self._sought.pop(partition, None)
            return
        if self._sought.pop(partition, None) == target:
            return  # sought there already: nothing between target and first
        store.raise_dead_letters_until(partition, max(written, first), self._source)
        self.resend_from[partition] = max(self.resend_from[partition], first)
        self._sought[partition] = target
        self._recount_until[partition] = max(first, self._recount_until.get(partition, 0))
        metrics.RECOUNTING.set(len(self._recount_until))
        metrics.RECOUNTS.inc()
        log.error(
            "partition %d: redis holds its counts up to offset %d, the checkpoint starts at "
            "%d (Kafka's group committed %s): recounting from offset %d",
            partition,
            since.offset,
            first,
            committed,
            target,
        )
        seeker.rewind(partition, target)
        raise Rewind(partition)

    def partial_for(
        self, partition: int, first_time_ms: int | None, window_ms: int, grace_ms: int
    ) -> tuple[int, int] | None:
        """The windows the next write of ``partition`` publishes partial (``from``,
        ``till``), when its counting starts without the records before it."""
        before = self.lacking.get(partition)
        if before is None or first_time_ms is None:
            return None
        since_cut, cut = before
        return lacking(
            since_cut, first_time_ms, window_ms=window_ms, grace_ms=grace_ms if cut else 0
        )

    def written(self, partition: int, progress: Progress, partial: tuple[int, int] | None) -> None:
        """A write of ``partition`` applied, up to ``progress`` (``partial`` marked)."""
        if partial is not None:
            self.lacking.pop(partition, None)
            log.warning(
                "partition %d: windows from %d to %d lack records before its first counted "
                "one; they are published partial",
                partition,
                *partial,
            )
        until = self._recount_until.get(partition)
        if until is not None and progress.offset >= until - 1:
            del self._recount_until[partition]
            metrics.RECOUNTING.set(len(self._recount_until))
            log.warning("partition %d: recounted up to offset %d", partition, until - 1)

    def forget(self, partitions: list[int]) -> None:
        """What this replica knew of ``partitions`` may be stale (others count them): a
        new assignment begins, and a flush of an earlier one changes nothing more."""
        with self._lock:
            self.assignment += 1
            for partition in partitions:
                self.lacking.pop(partition, None)
                self._sought.pop(partition, None)
                self._recount_until.pop(partition, None)
            metrics.RECOUNTING.set(len(self._recount_until))
