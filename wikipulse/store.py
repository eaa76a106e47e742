"""The Redis contract: where windows live, how they are written, how they are read.

Every key is built here (`KeyLayout`) and every access goes through `WindowStore`: the
processor writes with it, the dashboard and the CLI read with it. The table of keys is
in docs/architecture.md ("The Redis contract").

**Open and final windows.** The processor adds each partition's counts to that
partition's *open* windows (a hash per window) once per checkpoint; when the partition's
event time passes a window's end plus the grace, the window becomes *final*: its counts
move into the window's sorted set and never change again. Each server name lives in one
raw-topic partition (the producer keys records by it), so partitions never touch each
other's members.

**Completeness.** Window ``S`` is complete when every partition of the raw topic has
finalized past it (``closed[p] >= S + window`` for all ``p``). Only then is ``S`` added to
``windows`` and announced. A reader that wants final numbers goes through ``windows``,
never straight to a window key.

**Exactly once.** Counts are added, so a batch must never apply twice. Beside the counts,
each partition keeps its *progress*: the last raw-topic offset whose record is in Redis,
and the partition's event time. A write (`write_windows.lua`, one atomic step) names the
offset it read and applies only if that is still the stored one, moving it on in the same
step. Quix Streams flushes sinks before it commits offsets, so after a crash the records
since the last commit come again: the sink skips those at or below the stored offset,
and a replica that lost the partition is refused (`StaleProgress`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis

from wikipulse.unusual import Rule, Unusual, find_unusual

WRITE_WINDOWS = (Path(__file__).parent / "write_windows.lua").read_text()
#: The window length readers assume while no processor has recorded one (its default).
DEFAULT_WINDOW_MS = 30_000


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Every Redis key and channel name of one deployment (one ``REDIS_KEY_PREFIX``)."""

    prefix: str = "wikipulse:"

    def window(self, start_ms: int | str) -> str:
        """The sorted set of one window's counts."""
        return f"{self.prefix}window:{start_ms}"

    @property
    def complete(self) -> str:
        """The sorted set of complete windows, and the channel that announces new ones."""
        return f"{self.prefix}windows"

    @property
    def closed(self) -> str:
        return f"{self.prefix}closed"

    @property
    def pending(self) -> str:
        return f"{self.prefix}pending"

    @property
    def meta(self) -> str:
        return f"{self.prefix}meta"

    @property
    def progress(self) -> str:
        """Per raw topic and partition, the last offset counted and the event time
        (fields ``<progress_field>:offset`` and ``<progress_field>:time``)."""
        return f"{self.prefix}progress"

    @staticmethod
    def progress_field(source: str, partition: int) -> str:
        """The prefix of one partition's fields in `progress` (``source``: the topic's id)."""
        return f"{source}:{partition}"

    def open_windows(self, partition: int) -> str:
        """The starts of one partition's open (not yet final) windows."""
        return f"{self.prefix}open:{partition}"

    def open_window(self, partition: int, start_ms: int) -> str:
        """One partition's counts so far in one open window (a hash: wiki -> count)."""
        return f"{self.prefix}open:{partition}:{start_ms}"


@dataclass(frozen=True, slots=True)
class Progress:
    """How far one partition's counts in Redis reach.

    ``offset`` is the last raw-topic offset whose record is counted (-1: none yet);
    ``time_ms`` the newest event time the partition has seen (its clock: what is late).
    """

    offset: int = -1
    time_ms: int | None = None


class StaleProgress(Exception):
    """The partition's stored progress is not what the writer read: someone else (a
    replica that took the partition over, or this one before a crash) wrote since."""

    def __init__(self, partition: int, stored_offset: int) -> None:
        super().__init__(f"partition {partition} is counted up to offset {stored_offset} already")
        self.partition = partition
        self.stored_offset = stored_offset


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
    """Writes finalized windows (the processor) and reads complete ones (everyone else).

    A complete window never changes, so readers cache its summary; an hour of history
    then costs one read of the index, not 120 sorted sets.
    """

    def __init__(self, client: redis.Redis, keys: KeyLayout) -> None:
        self.client = client
        self.keys = keys
        self._script = client.register_script(WRITE_WINDOWS)
        self._summaries: OrderedDict[int, WindowSummary] = OrderedDict()
        self._counts: OrderedDict[int, dict[str, int]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, url: str, prefix: str, timeout: float = 10.0) -> WindowStore:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=5, health_check_interval=15
        )
        return cls(client, KeyLayout(prefix))

    def close(self) -> None:
        self.client.close()

    # -- the writer's side ---------------------------------------------------------

    def write(
        self,
        *,
        partition: int,
        closed_end: int,
        windows: Mapping[int, Mapping[str, int]],
        partitions: int,
        window_ms: int,
        ttl_seconds: int,
        finalize: Iterable[int] | None = None,
        progress: tuple[Progress, Progress] | None = None,
        source: str = "",
    ) -> tuple[int, list[int]]:
        """Add one partition's counts (``windows``) to its open windows, make the open
        windows ``finalize`` final, and move the partition's closed mark to ``closed_end``.

        ``finalize`` defaults to the windows of ``windows`` that end by ``closed_end``;
        the processor names every open window of the partition that does
        (`open_windows` lists those opened before).

        ``progress`` is ``(read, new)``: the write applies only while the stored progress
        of ``source`` (the raw topic's identity) and ``partition`` is ``read``, and stores
        ``new`` with it; otherwise it changes nothing and raises `StaleProgress`. Without
        it the write is unfenced (tools and tests that seed windows).

        Returns the number of windows finalized and the starts that became complete by
        it (announced on the channel). Raises `redis.ConnectionError` /
        `redis.TimeoutError` when Redis is unreachable.
        """
        if finalize is None:
            finalize = [start for start in windows if start + window_ms <= closed_end]
        read, new = progress or (None, None)
        args: list[Any] = [
            partition,
            closed_end,
            partitions,
            window_ms,
            ttl_seconds,
            self.keys.progress_field(source, partition),
            "" if read is None else read.offset,
            "" if new is None else new.offset,
            "" if new is None or new.time_ms is None else new.time_ms,
            len(windows),
        ]
        for start in sorted(windows):
            members = windows[start]
            args += [self.keys.open_window(partition, start), start, len(members)]
            for member, count in members.items():
                args += [member, count]
        for start in sorted(finalize):
            args += [self.keys.open_window(partition, start), self.keys.window(start), start]
        keys = [
            self.keys.closed,
            self.keys.pending,
            self.keys.complete,
            self.keys.meta,
            self.keys.progress,
            self.keys.open_windows(partition),
        ]
        answer = self._script(keys=keys, args=args)
        if answer[0] == b"stale":
            raise StaleProgress(partition, int(answer[1]))
        return int(answer[1]), [int(start) for start in answer[2]]

    def open_windows(self, partition: int) -> set[int]:
        """The starts of the windows ``partition`` has counts in that are not final yet."""
        members = cast(list[bytes], self.client.zrange(self.keys.open_windows(partition), 0, -1))
        return {int(m) for m in members}

    def progress(self, partition: int, source: str = "") -> Progress:
        """What `write` last stored for ``source`` and ``partition`` (`Progress()` if none)."""
        field = self.keys.progress_field(source, partition)
        offset, time_ms = cast(
            list[bytes | None],
            self.client.hmget(self.keys.progress, [f"{field}:offset", f"{field}:time"]),
        )
        if offset is None:
            return Progress()
        return Progress(int(offset), int(time_ms) if time_ms else None)

    def recorded(self) -> tuple[int, int] | None:
        """``(window_ms, partitions)`` as the processor last recorded them, if it did."""
        found = cast(
            list[bytes | None], self.client.hmget(self.keys.meta, ["window_ms", "partitions"])
        )
        if found[0] is None or found[1] is None:
            return None
        return int(found[0]), int(found[1])

    # -- the readers' side ---------------------------------------------------------

    def window_ms(self) -> int:
        """The window length recorded by the processor (its default before it wrote any)."""
        recorded = self.recorded()
        return recorded[0] if recorded else DEFAULT_WINDOW_MS

    def starts(self, limit: int) -> list[int]:
        """The starts of the newest ``limit`` complete windows, oldest first."""
        members = cast(list[bytes], self.client.zrange(self.keys.complete, -limit, -1))
        return [int(m) for m in members]

    def latest(self) -> int | None:
        newest = self.starts(1)
        return newest[0] if newest else None

    def is_complete(self, start: int) -> bool:
        return self.client.zscore(self.keys.complete, str(start)) is not None

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
        history = [int(m) for m in cast(list[bytes], members)]
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
