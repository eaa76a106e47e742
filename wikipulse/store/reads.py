"""The readers' side: complete windows, their leaderboards and breakdowns, what is
unusual in them, and health.

Readers see only *complete* windows: those listed in the complete index
(`KeyLayout.complete`) whose counts are still held. A window is listed there once every
partition has finalized it, with its final counts (`write_windows.lua`), and it never
changes after; so a reader caches a window's summary and counts, and an hour of history
costs one read of the index, not 120 sorted sets. History in buckets is read by
`wikipulse.store.history`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import redis
from redis.client import PubSub

from wikipulse.store.base import StoreBase
from wikipulse.store.keys import KeyLayout
from wikipulse.store.values import ALL_WIKIS, Breakdown
from wikipulse.unusual import Rule, Unusual, find_unusual

#: The window length readers assume while no processor has recorded one (its default).
DEFAULT_WINDOW_MS = 30_000


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


#: A sorted set read with its scores: (member, score) pairs.
Scored = list[tuple[bytes, float]]


class WindowReader(StoreBase):
    """Reads published windows (the dashboard, the CLI, `wikipulse rebuild`, the tools).

    A complete window never changes, so its summary and counts are cached: only when
    they were read with the window's entry in the index of complete windows, in one
    transaction (`_final`). A window listed before a failover may be missing from the
    new primary until the processor recounts it; what is read of it meanwhile is not
    its final word.
    """

    def __init__(self, client: redis.Redis, keys: KeyLayout) -> None:
        super().__init__(client, keys)
        self._summaries: OrderedDict[int, WindowSummary] = OrderedDict()
        self._counts: OrderedDict[int, dict[str, int]] = OrderedDict()
        self._lock = threading.Lock()

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
        """Whether window ``start`` is complete and its counts still held: both read in
        one transaction, so in one round trip and at one instant."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.zscore(self.keys.complete, str(start))
            pipe.exists(self.keys.window(start))
            listed, held = pipe.execute()
        return listed is not None and bool(held)

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
        ((scores, final),) = self._final([start])
        if final:
            return self._summarized(start, scores, window_ms)
        window_ms = window_ms or self.window_ms()
        return WindowSummary(start, start + window_ms, int(sum(s for _, s in scores)), len(scores))

    def _summarized(
        self, start: int, scores: Scored, window_ms: int | None = None
    ) -> WindowSummary:
        """The summary of complete window ``start`` from its final ``scores``, kept."""
        with self._lock:
            cached = self._summaries.get(start)
        if cached is not None:
            return cached
        window_ms = window_ms or self.window_ms()
        summary = WindowSummary(
            start, start + window_ms, int(sum(s for _, s in scores)), len(scores)
        )
        with self._lock:
            self._summaries[start] = summary
            while len(self._summaries) > 5000:
                self._summaries.popitem(last=False)
        return summary

    def _final(self, starts: list[int]) -> list[tuple[Scored, bool]]:
        """Each window's counts, and whether they are final: listed complete and held,
        both read at one instant (one transaction)."""
        with self.client.pipeline(transaction=True) as pipe:
            for start in starts:
                pipe.zscore(self.keys.complete, str(start))
                pipe.zrange(self.keys.window(start), 0, -1, withscores=True)
            read = pipe.execute()
        pairs = zip(read[::2], cast(list[Scored], read[1::2]), strict=True)
        return [(scores, listed is not None and bool(scores)) for listed, scores in pairs]

    def leaderboard(self, start: int, limit: int) -> Leaderboard | None:
        """The ``limit`` busiest wikis of window ``start``; None while it is not complete.
        The window is read whole with its index entry (`_final`), so the rows and the
        totals are of one instant, and never of a window a failover took away."""
        ((scores, final),) = self._final([start])
        if not final:
            return None
        summary = self._summarized(start, scores)
        # as ZRANGE ... REV orders them: by count, then by name, both descending
        rows = sorted(scores, key=lambda pair: (pair[1], pair[0]), reverse=True)[:limit]
        decoded = [(m.decode("utf-8", "replace"), int(s)) for m, s in rows]
        return Leaderboard(summary, decoded)

    def breakdown(self, start: int, server_name: str = ALL_WIKIS) -> Breakdown | None:
        """One wiki's breakdown in complete window ``start`` (all wikis' by default); None
        while the window is not complete."""
        found = self.breakdowns(start, [server_name])
        return None if found is None else found[server_name]

    def breakdowns(self, start: int, server_names: list[str]) -> dict[str, Breakdown] | None:
        """The breakdowns of ``server_names`` in complete window ``start`` (`ALL_WIKIS`
        may be one of them); None while the window is not complete."""
        if not server_names:
            return {} if self.is_complete(start) else None
        with self.client.pipeline(transaction=True) as pipe:  # at one instant
            pipe.zscore(self.keys.complete, str(start))
            pipe.exists(self.keys.window(start))
            pipe.hmget(self.keys.breakdown(start), server_names)
            listed, held, found = pipe.execute()
        if listed is None or not held:
            return None
        values = cast(list[bytes | None], found)
        return {n: Breakdown.decode(v) for n, v in zip(server_names, values, strict=True)}

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
            read = self._final(missing)
            with self._lock:
                for start, (scores, final) in zip(missing, read, strict=True):
                    counts = {m.decode("utf-8", "replace"): int(c) for m, c in scores}
                    found[start] = counts
                    if final:
                        self._counts[start] = counts
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
        if not counts[start]:
            return None  # gone since (a failover): no report from an empty window
        # a window of the baseline gone meanwhile is left out, not counted as zeros
        history = [s for s in history if counts[s]]
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
