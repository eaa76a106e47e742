"""The Redis contract: where windows live, how they are written, how they are read.

Every key is built here (`KeyLayout`, `SourceKeys`) and every access goes through
`WindowStore`: the processor writes with it, the dashboard and the CLI read with it.
The table of keys is in docs/architecture.md ("The Redis contract"); the lifecycle of a
window (open, final, published) is applied by one Lua script, `write_windows.lua`.

**A view of the raw topic.** Redis holds nothing that the raw topic does not: every key
but the published windows is the processor's working state, scoped by the raw topic's
identity (its Kafka topic id, the *source*), so a topic deleted and created again
starts afresh instead of being mistaken for a replay of the old one. When Redis loses
writes, the processor recounts them from the raw topic (`processor.sink`).

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
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import redis
from redis.client import PubSub

from wikipulse import redis_client
from wikipulse.events import CHANGE_TYPES
from wikipulse.settings import RedisSettings
from wikipulse.unusual import Rule, Unusual, find_unusual

WRITE_WINDOWS = (Path(__file__).parent / "write_windows.lua").read_text()
_RAISE = """
local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > stored then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
"""
#: The window length readers assume while no processor has recorded one (its default).
DEFAULT_WINDOW_MS = 30_000
#: The fields of a breakdown, in the order of its stored value (comma-separated
#: integers): events, events by bots, events per change type
#: (`wikipulse.events.CHANGE_TYPES`), bytes added, bytes removed (sizes of the events
#: that have lengths: a change of +d adds d, of -d removes d). ``count - bot`` are the
#: humans'; ``added - removed`` is the net change, ``added + removed`` all bytes changed.
BREAKDOWN: tuple[str, ...] = ("count", "bot", *CHANGE_TYPES, "added", "removed")
#: The member of a breakdown that holds the sum over every wiki (no wiki has this name:
#: an empty server name is never counted).
ALL_WIKIS = ""


@dataclass(frozen=True, slots=True)
class Rollup:
    """One resolution of history: buckets of ``seconds``, kept ``ttl_seconds``."""

    name: str
    seconds: int
    ttl_seconds: int

    @property
    def ms(self) -> int:
        return self.seconds * 1000


#: The resolutions complete windows roll up into (and their default retention).
ROLLUPS: tuple[Rollup, ...] = (
    Rollup("5m", 300, 7 * 86_400),
    Rollup("1h", 3_600, 90 * 86_400),
    Rollup("1d", 86_400, 730 * 86_400),
)
#: The name readers give the windows themselves, the finest resolution.
WINDOW_RESOLUTION = "window"


@dataclass(frozen=True, slots=True)
class SourceKeys:
    """The processor's working state for one raw topic (``source``: its Kafka topic id).

    Nothing here is read by readers; all of it can be rebuilt from the raw topic.
    """

    base: str

    @property
    def progress(self) -> str:
        """Per partition ``P``: ``P:offset`` (the last offset processed) and ``P:time``
        (the partition's clock, the newest event time it has seen)."""
        return f"{self.base}progress"

    @property
    def closed(self) -> str:
        """Per partition: the end (ms) of the newest window its clock has closed."""
        return f"{self.base}closed"

    @property
    def partial(self) -> str:
        """Per partition: ``from:till`` (ms), windows overlapping it lack records (the
        partition started counting inside them without the records before)."""
        return f"{self.base}partial"

    @property
    def pending(self) -> str:
        """Windows some partition has finalized that are not published yet."""
        return f"{self.base}pending"

    @property
    def durable(self) -> str:
        """A marker the processor writes and waits for before each commit: once a
        replica (or the disk) has it, it has every write before it."""
        return f"{self.base}durable"

    def open_windows(self, partition: int) -> str:
        """The starts of one partition's open (not yet final) windows."""
        return f"{self.base}open:{partition}"

    def open_window_prefix(self, partition: int) -> str:
        return f"{self.base}open:{partition}:"

    def open_window(self, partition: int, start_ms: int) -> str:
        """One partition's counts so far in one open window (a hash: wiki -> count)."""
        return f"{self.open_window_prefix(partition)}{start_ms}"

    def open_breakdown_prefix(self, partition: int) -> str:
        return f"{self.base}open-breakdown:{partition}:"

    def open_breakdown(self, partition: int, start_ms: int) -> str:
        """One partition's breakdowns so far in one open window (wiki -> `BREAKDOWN`)."""
        return f"{self.open_breakdown_prefix(partition)}{start_ms}"

    @property
    def final_prefix(self) -> str:
        return f"{self.base}final:"

    def final(self, start_ms: int | str) -> str:
        """The counts every partition has finalized so far of one unpublished window."""
        return f"{self.final_prefix}{start_ms}"

    @property
    def final_breakdown_prefix(self) -> str:
        return f"{self.base}final-breakdown:"

    def final_breakdown(self, start_ms: int | str) -> str:
        """The breakdowns every partition has finalized so far of one unpublished window."""
        return f"{self.final_breakdown_prefix}{start_ms}"


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Every Redis key and channel name of one deployment (one ``REDIS_KEY_PREFIX``)."""

    prefix: str = "wikipulse:"

    @property
    def every(self) -> str:
        """A ``SCAN`` pattern matching every key of this deployment."""
        return f"{self.prefix}*"

    @property
    def window_prefix(self) -> str:
        return f"{self.prefix}window:"

    def window(self, start_ms: int | str) -> str:
        """The sorted set of one published window's counts."""
        return f"{self.window_prefix}{start_ms}"

    @property
    def breakdown_prefix(self) -> str:
        return f"{self.prefix}breakdown:"

    def breakdown(self, start_ms: int | str) -> str:
        """The hash of one published window's breakdowns: wiki -> `BREAKDOWN` values, and
        `ALL_WIKIS` -> their sum. Published in the same step as `window`."""
        return f"{self.breakdown_prefix}{start_ms}"

    @property
    def complete(self) -> str:
        """The sorted set of complete windows, and the channel that announces new ones."""
        return f"{self.prefix}windows"

    @property
    def partial(self) -> str:
        """The sorted set of windows published with counts known to lack records."""
        return f"{self.prefix}partial"

    @property
    def meta(self) -> str:
        """``window_ms``, ``partitions`` and ``source`` of the processor that wrote last."""
        return f"{self.prefix}meta"

    def source(self, source: str) -> SourceKeys:
        """The processor's working state for the raw topic whose id is ``source``."""
        return SourceKeys(f"{self.prefix}src:{source}:")

    def rollup_prefix(self, resolution: str) -> str:
        return f"{self.prefix}rollup:{resolution}:"

    def rollup(self, resolution: str, start_ms: int | str) -> str:
        """One bucket of a resolution (a hash like `breakdown`: wiki -> `BREAKDOWN`
        values of its complete windows, `ALL_WIKIS` -> their sum)."""
        return f"{self.rollup_prefix(resolution)}{start_ms}"

    def rollups(self, resolution: str) -> str:
        """The sorted set of a resolution's complete buckets (member = score = start)."""
        return f"{self.prefix}rollups:{resolution}"

    def rollups_partial(self, resolution: str) -> str:
        """The buckets holding a window published partial (their counts lack records)."""
        return f"{self.prefix}rollups:{resolution}:partial"

    def rollups_pending(self, resolution: str) -> str:
        """The buckets that have windows but are not judged yet (not every partition
        has closed past their end)."""
        return f"{self.prefix}rollups:{resolution}:pending"


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


@dataclass(frozen=True, slots=True)
class WindowSummary:
    start: int
    end: int
    total: int
    wikis: int


@dataclass(frozen=True, slots=True)
class Leaderboard:
    window: WindowSummary
    rows: list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class Breakdown:
    """What the events of one wiki (or of all) in a window or bucket were made of."""

    count: int = 0
    bot: int = 0
    #: events per change type (`wikipulse.events.CHANGE_TYPES`, every type present)
    types: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANGE_TYPES, 0))
    added: int = 0
    removed: int = 0

    @property
    def human(self) -> int:
        return self.count - self.bot

    @property
    def net_bytes(self) -> int:
        return self.added - self.removed

    @property
    def changed_bytes(self) -> int:
        """Bytes added plus bytes removed."""
        return self.added + self.removed

    @classmethod
    def decode(cls, value: bytes | None) -> Breakdown:
        """A stored breakdown value (`BREAKDOWN` order); absent: nothing counted."""
        if not value:
            return cls()
        numbers = [int(x) for x in value.split(b",")]
        numbers += [0] * (len(BREAKDOWN) - len(numbers))
        found = dict(zip(BREAKDOWN, numbers, strict=False))
        types = {t: found[t] for t in CHANGE_TYPES}
        return cls(found["count"], found["bot"], types, found["added"], found["removed"])


@dataclass(frozen=True, slots=True)
class Point:
    """One window or bucket of a series: complete, or not yet (a bucket whose end some
    partition has not closed past) or partial (it holds a window whose counts lack
    records)."""

    start: int
    end: int
    complete: bool
    breakdown: Breakdown


@dataclass(frozen=True, slots=True)
class Breakdowns:
    """A window's or bucket's breakdowns: all wikis', and the busiest wikis' (by count)."""

    start: int
    end: int
    complete: bool
    all: Breakdown
    wikis: list[tuple[str, Breakdown]]


class TooManyPoints(ValueError):
    """A series would hold more than the reader allows."""


@dataclass(frozen=True, slots=True)
class Health:
    newest_window: int | None
    newest_window_age_seconds: float | None
    events_per_second: float | None
    windows_indexed: int
    window_seconds: int


@dataclass(frozen=True, slots=True)
class UnusualReport:
    window: WindowSummary
    baseline_windows: int
    wikis: list[Unusual]


Scored = list[tuple[bytes, float]]


class WindowStore:
    """Writes one partition's batches (the processor) and reads published windows
    (everyone else).

    A complete window never changes, so readers cache its summary; an hour of history
    then costs one read of the index, not 120 sorted sets.
    """

    def __init__(self, client: redis.Redis, keys: KeyLayout) -> None:
        self.client = client
        self.keys = keys
        self._script = client.register_script(WRITE_WINDOWS)
        self._raise = client.register_script(_RAISE)
        self._summaries: OrderedDict[int, WindowSummary] = OrderedDict()
        self._counts: OrderedDict[int, dict[str, int]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def connect(
        cls, settings: RedisSettings, timeout: float = 10.0, reads: bool = False
    ) -> WindowStore:
        """The store of ``settings`` (its URL or its Sentinels, its prefix); ``reads``:
        a reader's client, which waits out a failover (`wikipulse.redis_client`)."""
        client = redis_client.connect(settings, timeout=timeout, reads=reads)
        return cls(client, KeyLayout(settings.redis_key_prefix))

    def close(self) -> None:
        self.client.close()

    # -- the writer's side ---------------------------------------------------------

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

    def recorded(self) -> tuple[int, int] | None:
        """``(window_ms, partitions)`` as the processor last recorded them, if it did."""
        found = self._meta("window_ms", "partitions")
        return (int(found[0]), int(found[1])) if found else None

    def recorded_source(self) -> tuple[str, int] | None:
        """``(source, partitions)`` as the processor last recorded them, if it did."""
        found = self._meta("source", "partitions")
        return (found[0].decode(), int(found[1])) if found else None

    def _meta(self, *fields: str) -> list[bytes] | None:
        """``fields`` of `KeyLayout.meta`, or None unless all of them are recorded."""
        found = cast(list[bytes | None], self.client.hmget(self.keys.meta, list(fields)))
        present = [value for value in found if value is not None]
        return present if len(present) == len(fields) else None

    # -- the readers' side ---------------------------------------------------------

    def window_ms(self) -> int:
        """The window length recorded by the processor (its default before it wrote any)."""
        recorded = self.recorded()
        return recorded[0] if recorded else DEFAULT_WINDOW_MS

    def starts(self, limit: int) -> list[int]:
        """The starts of the newest ``limit`` complete windows, oldest first (those whose
        counts expired are left out, `_kept`)."""
        members = cast(list[bytes], self.client.zrange(self.keys.complete, -limit, -1))
        return self._kept([int(m) for m in members], self.keys.window)

    def _kept(self, starts: list[int], key_of: Callable[[int], str]) -> list[int]:
        """Those of ``starts`` whose key still exists. Keys expire on the wall clock
        (``WINDOW_TTL_SECONDS``, a resolution's TTL) while the indexes are trimmed only
        when the processor publishes: while it stalls, an index lists what expired, and
        reading it would give a complete window or bucket of zero."""
        if not starts:
            return []
        with self.client.pipeline(transaction=False) as pipe:
            for start in starts:
                pipe.exists(key_of(start))
            found = cast(list[int], pipe.execute())
        return [start for start, exists in zip(starts, found, strict=True) if exists]

    def latest(self) -> int | None:
        newest = self.starts(1)
        return newest[0] if newest else None

    def is_complete(self, start: int) -> bool:
        """Whether window ``start`` is complete and its counts still held."""
        if self.client.zscore(self.keys.complete, str(start)) is None:
            return False
        return bool(self.client.exists(self.keys.window(start)))

    def partial_starts(self, limit: int) -> list[int]:
        """The starts of the newest ``limit`` windows published partial, oldest first:
        their counts lack records (the first window of a stream, a retention cut)."""
        members = cast(list[bytes], self.client.zrange(self.keys.partial, -limit, -1))
        return [int(m) for m in members]

    @property
    def channel(self) -> str:
        """The pub/sub channel that announces complete windows (for async readers)."""
        return self.keys.complete

    def subscribe(self) -> PubSub:
        """A pub/sub connection subscribed to the announcements of complete windows
        (each message's data is the window's start)."""
        pubsub: PubSub = self.client.pubsub()  # type: ignore[no-untyped-call]
        pubsub.subscribe(self.channel)
        return pubsub

    def windows(self, limit: int) -> list[WindowSummary]:
        """The newest ``limit`` complete windows, newest first."""
        window_ms = self.window_ms()
        return [self.summary(s, window_ms) for s in reversed(self.starts(limit))]

    def summary(self, start: int, window_ms: int | None = None) -> WindowSummary:
        with self._lock:
            cached = self._summaries.get(start)
        if cached is not None:
            return cached
        window_ms = window_ms or self.window_ms()
        scores = cast(Scored, self.client.zrange(self.keys.window(start), 0, -1, withscores=True))
        summary = WindowSummary(
            start, start + window_ms, int(sum(s for _, s in scores)), len(scores)
        )
        with self._lock:
            self._summaries[start] = summary
            while len(self._summaries) > 5000:
                self._summaries.popitem(last=False)
        return summary

    def leaderboard(self, start: int, limit: int) -> Leaderboard | None:
        """The ``limit`` busiest wikis of window ``start``; None while it is not complete."""
        if not self.is_complete(start):
            return None
        key = self.keys.window(start)
        rows = cast(Scored, self.client.zrange(key, 0, limit - 1, desc=True, withscores=True))
        decoded = [(m.decode("utf-8", "replace"), int(s)) for m, s in rows]
        return Leaderboard(self.summary(start), decoded)

    def breakdown(self, start: int, server_name: str = ALL_WIKIS) -> Breakdown | None:
        """One wiki's breakdown in complete window ``start`` (all wikis' by default); None
        while the window is not complete."""
        if not self.is_complete(start):
            return None
        return Breakdown.decode(
            cast(bytes | None, self.client.hget(self.keys.breakdown(start), server_name))
        )

    def breakdowns(self, start: int, server_names: list[str]) -> dict[str, Breakdown] | None:
        """The breakdowns of ``server_names`` in complete window ``start`` (`ALL_WIKIS`
        may be one of them); None while the window is not complete."""
        if not self.is_complete(start):
            return None
        if not server_names:
            return {}
        found = cast(
            list[bytes | None], self.client.hmget(self.keys.breakdown(start), server_names)
        )
        return {n: Breakdown.decode(v) for n, v in zip(server_names, found, strict=True)}

    def resolution_ms(self, resolution: str) -> int:
        """The length of a resolution's windows or buckets (`WINDOW_RESOLUTION` or one
        of `ROLLUPS`); ValueError for any other name."""
        if resolution == WINDOW_RESOLUTION:
            return self.window_ms()
        for rollup in ROLLUPS:
            if rollup.name == resolution:
                return rollup.ms
        names = ", ".join([WINDOW_RESOLUTION, *(r.name for r in ROLLUPS)])
        raise ValueError(f"unknown resolution {resolution!r}: one of {names}")

    def _indexes(self, resolution: str) -> tuple[str, list[str], Any]:
        """The complete index, the other indexes, and the key builder of a resolution."""
        keys = self.keys
        if resolution == WINDOW_RESOLUTION:
            return keys.complete, [keys.partial], keys.breakdown
        return (
            keys.rollups(resolution),
            [keys.rollups_partial(resolution), keys.rollups_pending(resolution)],
            lambda start: keys.rollup(resolution, start),
        )

    def series(
        self,
        resolution: str,
        since_ms: int,
        until_ms: int,
        server_name: str = ALL_WIKIS,
        max_points: int = 3000,
    ) -> list[Point]:
        """One wiki's (all wikis' by default) windows or buckets of ``resolution`` that
        start in ``[since_ms, until_ms)``, oldest first: the complete ones and those
        published partial or not complete yet (``complete`` False). Raises
        `TooManyPoints` when the range could hold more than ``max_points``."""
        length = self.resolution_ms(resolution)
        if until_ms <= since_ms:
            return []
        if (until_ms - since_ms) // length > max_points:
            raise TooManyPoints(
                f"{resolution} from {since_ms} to {until_ms} holds more than {max_points} points"
            )
        complete_key, others, key_of = self._indexes(resolution)
        with self.client.pipeline(transaction=False) as pipe:
            for index in (complete_key, *others):
                pipe.zrangebyscore(index, since_ms, f"({until_ms}")
            found = cast(list[list[bytes]], pipe.execute())
        held = self.keys.window if resolution == WINDOW_RESOLUTION else key_of
        complete = set(self._kept(sorted(int(m) for m in found[0]), held))
        expired = {int(m) for m in found[0]} - complete  # never read as a complete zero
        waiting = {int(m) for f in found[1:] for m in f} - expired
        starts = sorted(complete | waiting)
        with self.client.pipeline(transaction=False) as pipe:
            for start in starts:
                pipe.hget(key_of(start), server_name)
            values = cast(list[bytes | None], pipe.execute())
        return [
            Point(start, start + length, start in complete, Breakdown.decode(value))
            for start, value in zip(starts, values, strict=True)
        ]

    def bucket_breakdowns(self, resolution: str, start: int, limit: int) -> Breakdowns | None:
        """All wikis' breakdown of one window or bucket, and its ``limit`` busiest wikis';
        None when it is in no index (never written, or expired)."""
        length = self.resolution_ms(resolution)
        complete_key, others, key_of = self._indexes(resolution)
        with self.client.pipeline(transaction=False) as pipe:
            for index in (complete_key, *others):
                pipe.zscore(index, str(start))
            listed = pipe.execute()
        if all(score is None for score in listed):
            return None
        found = cast(dict[bytes, bytes], self.client.hgetall(key_of(start)))
        every = Breakdown.decode(found.pop(ALL_WIKIS.encode(), None))
        wikis = sorted(
            ((name.decode("utf-8", "replace"), Breakdown.decode(v)) for name, v in found.items()),
            key=lambda row: (-row[1].count, row[0]),
        )[:limit]
        return Breakdowns(start, start + length, listed[0] is not None, every, wikis)

    def history(self, server_name: str, limit: int) -> list[tuple[int, int]]:
        """(window start, count) for one wiki over the newest ``limit`` windows, oldest first."""
        starts = self.starts(limit)
        with self.client.pipeline(transaction=False) as pipe:
            for start in starts:
                pipe.zscore(self.keys.window(start), server_name)
            scores = pipe.execute()
        return [(start, int(score or 0)) for start, score in zip(starts, scores, strict=True)]

    def counts(self, starts: list[int]) -> dict[int, dict[str, int]]:
        """Every wiki's count in each of the complete windows ``starts`` (cached: final)."""
        with self._lock:
            found = {s: self._counts[s] for s in starts if s in self._counts}
        missing = [s for s in starts if s not in found]
        if missing:
            with self.client.pipeline(transaction=False) as pipe:
                for start in missing:
                    pipe.zrange(self.keys.window(start), 0, -1, withscores=True)
                read = cast(list[Scored], pipe.execute())
            with self._lock:
                for start, scores in zip(missing, read, strict=True):
                    counts = {m.decode("utf-8", "replace"): int(c) for m, c in scores}
                    found[start] = self._counts[start] = counts
                while len(self._counts) > 400:
                    self._counts.popitem(last=False)
        return found

    def unusual(self, start: int, baseline_ms: int, rule: Rule) -> UnusualReport | None:
        """The wikis unusual in complete window ``start`` against the complete windows
        that start in ``[start - baseline_ms, start)``; None while ``start`` is not complete.
        """
        if not self.is_complete(start):
            return None
        members = self.client.zrangebyscore(self.keys.complete, start - baseline_ms, f"({start}")
        history = self._kept([int(m) for m in cast(list[bytes], members)], self.keys.window)
        counts = self.counts([*history, start])
        found = find_unusual(counts[start], [counts[s] for s in history], rule)
        return UnusualReport(self.summary(start), len(history), found)

    def health(self) -> Health:
        window_ms = self.window_ms()
        newest = self.latest()
        count = int(self.client.zcard(self.keys.complete))
        if newest is None:
            return Health(None, None, None, count, window_ms // 1000)
        summary = self.summary(newest, window_ms)
        age = time.time() - summary.end / 1000
        rate = round(summary.total * 1000 / window_ms, 2)
        return Health(newest, round(age, 1), rate, count, window_ms // 1000)
