"""The writer's side: one partition's batch applied to Redis in one atomic, fenced step.

The processor's sink counts each checkpoint per (window, wiki) and hands the sums here
as a `Batch`; `WindowWriter.write` encodes it with the keys it touches and runs
`write_windows.lua`, the window lifecycle, beside this file.

**Open, final, published.** The processor adds each partition's counts to that
partition's *open* windows once per checkpoint; when the partition's clock passes a
window's end plus the grace, its counts are added into the source's *final* set of the
window. When every partition of the source has closed past it, the window is
*published*: `window:S`, listed in the complete index (and announced), or in the
partial index when a partition started counting inside it without the records before
(the first window of a stream, a retention cut). A complete window never changes.

**Exactly once.** Counts are added, so a batch must never apply twice. Beside the
counts each partition keeps its *progress*: the last raw-topic offset it has
processed, and its clock. A write names the offset it read and applies only if that is
still the stored one (`StaleProgress` otherwise), moving it on in the same atomic step.

**Breakdowns.** Beside each window's counts, its *breakdown*: per wiki (and for all of
them, under the empty name) the `BREAKDOWN` of its events: bots, kinds of change, bytes
added and removed. It travels in the same batch, through the same fenced step and the
same lifecycle (open, final, published), so a replay never adds it twice and a window's
breakdown is published complete in the very step its counts are.

**A view of the raw topic.** Redis holds nothing that the raw topic does not: every key
but the published windows is the processor's working state, scoped by the raw topic's
identity (its Kafka topic id, the *source*), so a topic deleted and created again
starts afresh instead of being mistaken for a replay of the old one. When Redis loses
writes, the processor recounts them from the raw topic (`processor.recount`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import redis

from wikipulse.store.base import StoreBase
from wikipulse.store.keys import KeyLayout
from wikipulse.store.values import ROLLUPS, Rollup

#: The window lifecycle, one atomic step per batch (`WindowWriter.write`).
WRITE_WINDOWS = (Path(__file__).parent / "write_windows.lua").read_text()
#: Raises a hash field to a number, never lowers it (`raise_dead_letters_until`).
_RAISE = """
local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > stored then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
"""


@dataclass(frozen=True, slots=True)
class Progress:
    """How far one partition's counts in Redis reach.

    ``offset`` is the last raw-topic offset processed (-1: none yet); ``time_ms`` the
    newest event time the partition has seen (its clock: what is late).
    """

    offset: int = -1
    time_ms: int | None = None


class StaleProgress(Exception):
    """The partition's stored progress is not what the writer read: another replica
    wrote since (``stored`` is ahead), or Redis lost writes (``stored`` is behind)."""

    def __init__(self, partition: int, stored: Progress) -> None:
        super().__init__(f"partition {partition} is counted up to offset {stored.offset}")
        self.partition = partition
        self.stored = stored

    @property
    def stored_offset(self) -> int:
        return self.stored.offset


@dataclass(frozen=True, slots=True)
class Batch:
    """What one partition's records since its last write add up to (`write` applies it).

    ``counts``: window start -> wiki -> events; ``breakdowns``: window start -> wiki ->
    the `BREAKDOWN` of those events (its first value is the count). ``closed_end``: the
    end of the newest window the partition's clock has closed. ``since`` and
    ``progress``: the progress read before and stored after (None: an unfenced write, for
    tools and tests that seed windows). ``partial``: ``(from, till)`` when the partition
    counted records without the ones before them: windows overlapping it are published
    partial.
    """

    partition: int
    closed_end: int
    counts: Mapping[int, Mapping[str, int]] = field(default_factory=dict)
    since: Progress | None = None
    progress: Progress | None = None
    partial: tuple[int, int] | None = None
    breakdowns: Mapping[int, Mapping[str, list[int]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Written:
    """What a `write` did: windows finalized by the partition, windows published
    complete and partial by it, and events not added because their window had been
    published complete already (a re-created topic's backfill)."""

    finalized: int
    completed: list[int]
    partial: list[int]
    dropped: int


class WindowWriter(StoreBase):
    """Applies one partition's batches (the processor) and reads its progress back."""

    def __init__(self, client: redis.Redis, keys: KeyLayout) -> None:
        super().__init__(client, keys)
        self._script = client.register_script(WRITE_WINDOWS)
        self._raise = client.register_script(_RAISE)

    def write(
        self,
        batch: Batch,
        *,
        partitions: int,
        window_ms: int,
        ttl_seconds: int,
        source: str = "",
        rollups: tuple[Rollup, ...] = ROLLUPS,
    ) -> Written:
        """Apply ``batch`` of raw topic ``source`` (its id) in one atomic step, and roll
        the windows it publishes complete up into ``rollups`` (those whose bucket length
        is a multiple of ``window_ms``; retention 0 turns one off).

        Fenced when the batch carries its progress: it applies only while the stored
        progress of the partition is ``batch.since`` and stores ``batch.progress`` with
        it; otherwise it changes nothing and raises `StaleProgress`. Raises
        `redis.ConnectionError` / `redis.TimeoutError` when Redis is unreachable.
        """
        src = self.keys.source(source)
        partition = batch.partition
        used = [r for r in rollups if r.ttl_seconds > 0 and r.ms % window_ms == 0]
        document: dict[str, Any] = {
            "partition": str(partition),
            "partitions": partitions,
            "window_ms": window_ms,
            "ttl": ttl_seconds,
            "source": source,
            "closed_end": str(batch.closed_end),
            "windows": {
                str(start): dict(members) for start, members in batch.counts.items() if members
            },
            "breakdowns": {
                str(start): dict(members) for start, members in batch.breakdowns.items() if members
            },
            "keys": {
                "open": src.open_window_prefix(partition),
                "final": src.final_prefix,
                "window": self.keys.window_prefix,
                "open_breakdown": src.open_breakdown_prefix(partition),
                "final_breakdown": src.final_breakdown_prefix,
                "breakdown": self.keys.breakdown_prefix,
                "rollups": [
                    {
                        "bucket": self.keys.rollup_prefix(r.name),
                        "complete": self.keys.rollups(r.name),
                        "partial": self.keys.rollups_partial(r.name),
                        "pending": self.keys.rollups_pending(r.name),
                    }
                    for r in used
                ],
            },
            "rollups": [{"ms": r.ms, "ttl": r.ttl_seconds} for r in used],
        }
        if batch.since is not None and batch.progress is not None:
            new = batch.progress
            document["fence"] = {
                "expected": str(batch.since.offset),
                "offset": str(new.offset),
                "time": "" if new.time_ms is None else str(new.time_ms),
            }
        if batch.partial is not None:
            document["partial"] = {"from": str(batch.partial[0]), "till": str(batch.partial[1])}
        keys = [
            self.keys.complete,
            self.keys.partial,
            self.keys.meta,
            src.progress,
            src.closed,
            src.partial,
            src.pending,
            src.open_windows(partition),
        ]
        answer = self._script(keys=keys, args=[json.dumps(document)])
        if answer[0] == b"stale":
            offset, time_ms = int(answer[1]), answer[2]
            raise StaleProgress(partition, Progress(offset, int(time_ms) if time_ms else None))
        return Written(
            finalized=int(answer[1]),
            completed=[int(start) for start in answer[2]],
            dropped=int(answer[3]),
            partial=[int(start) for start in answer[4]],
        )

    def progress(self, partition: int, source: str = "") -> Progress:
        """What `write` last stored for ``source`` and ``partition`` (`Progress()` if none)."""
        offset, time_ms = cast(
            list[bytes | None],
            self.client.hmget(
                self.keys.source(source).progress, [f"{partition}:offset", f"{partition}:time"]
            ),
        )
        if offset is None:
            return Progress()
        return Progress(int(offset), int(time_ms) if time_ms else None)

    def dead_letters_until(self, partition: int, source: str = "") -> int:
        """The offset below which every invalid record of ``partition`` has its dead letter
        in Kafka, as a recount recorded it (-1: none recorded). Kafka's committed offset
        says the same until a recount commits below it."""
        found = self.client.hget(self.keys.source(source).progress, f"{partition}:dead_letters")
        return int(cast(bytes, found)) if found is not None else -1

    def raise_dead_letters_until(self, partition: int, offset: int, source: str = "") -> None:
        """Record `dead_letters_until` (it only ever grows)."""
        field = f"{partition}:dead_letters"
        self._raise(keys=[self.keys.source(source).progress], args=[field, offset])

    def open_windows(self, partition: int, source: str = "") -> set[int]:
        """The starts of the windows ``partition`` has counts in that are not final yet."""
        key = self.keys.source(source).open_windows(partition)
        return {int(m) for m in cast(list[bytes], self.client.zrange(key, 0, -1))}
