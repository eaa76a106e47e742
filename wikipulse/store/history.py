"""History: series of windows or buckets over a time range, and one bucket's breakdowns.

Complete windows roll up into 5-minute, hourly and daily buckets (`ROLLUPS`) in the Lua
step that publishes them. A bucket is complete once every partition has closed past
its end and none of its windows was published partial; until then it is read as well,
marked not complete (`Point.complete`), so a chart shows it pale instead of leaving a
hole. Windows themselves are the finest resolution (`WINDOW_RESOLUTION`): a series reads
them through the same indexes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from wikipulse.store.reads import WindowReader
from wikipulse.store.values import ALL_WIKIS, RESOLUTIONS, ROLLUPS, WINDOW_RESOLUTION, Breakdown


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


class HistoryReader(WindowReader):
    """Reads windows and buckets of every resolution as series (the charts, `wikipulse
    history`)."""

    def resolution_ms(self, resolution: str) -> int:
        """The length of a resolution's windows or buckets (one of `RESOLUTIONS`);
        ValueError for any other name."""
        if resolution == WINDOW_RESOLUTION:
            return self.window_ms()
        for rollup in ROLLUPS:
            if rollup.name == resolution:
                return rollup.ms
        raise ValueError(f"unknown resolution {resolution!r}: one of {', '.join(RESOLUTIONS)}")

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
