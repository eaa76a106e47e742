"""Reading windows from Redis, through the index of complete windows only.

A window in the index is final and never changes, so its total is computed once and
cached; the dashboard then draws an hour of history without re-reading 120 sorted sets.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import cast

import redis.asyncio as redis

from dashboard.settings import DashboardSettings
from processor.keys import KeyLayout


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


Scored = list[tuple[bytes, float]]


class WindowStore:
    def __init__(self, client: redis.Redis, keys: KeyLayout, window_ms: int) -> None:
        self.client = client
        self.keys = keys
        self.window_ms = window_ms
        self._summaries: OrderedDict[int, WindowSummary] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: DashboardSettings) -> WindowStore:
        """The store the dashboard and the CLI read, with its own Redis client."""
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
        return cls(client, KeyLayout(settings.redis_key_prefix), settings.window_seconds * 1000)

    async def windows(self, limit: int) -> list[WindowSummary]:
        """The newest ``limit`` complete windows, newest first."""
        starts = await self._starts(limit)
        return [await self.summary(s) for s in reversed(starts)]

    async def _starts(self, limit: int) -> list[int]:
        members = cast(list[bytes], await self.client.zrange(self.keys.index, -limit, -1))
        return [int(m) for m in members]

    async def is_complete(self, start: int) -> bool:
        return await self.client.zscore(self.keys.index, str(start)) is not None

    async def summary(self, start: int) -> WindowSummary:
        cached = self._summaries.get(start)
        if cached is not None:
            return cached
        key = self.keys.window(start)
        scores = cast(Scored, await self.client.zrange(key, 0, -1, withscores=True))
        summary = WindowSummary(
            start, start + self.window_ms, int(sum(s for _, s in scores)), len(scores)
        )
        self._summaries[start] = summary
        while len(self._summaries) > 5000:
            self._summaries.popitem(last=False)
        return summary

    async def leaderboard(self, start: int, limit: int) -> Leaderboard | None:
        if not await self.is_complete(start):
            return None
        key = self.keys.window(start)
        rows = cast(Scored, await self.client.zrange(key, 0, limit - 1, desc=True, withscores=True))
        decoded = [(m.decode("utf-8", "replace"), int(s)) for m, s in rows]
        return Leaderboard(await self.summary(start), decoded)

    async def latest(self) -> int | None:
        newest = await self._starts(1)
        return newest[0] if newest else None

    async def history(self, server_name: str, limit: int) -> list[tuple[int, int]]:
        """(window start, count) for one wiki over the newest ``limit`` windows, oldest first."""
        starts = await self._starts(limit)
        async with self.client.pipeline(transaction=False) as pipe:
            for start in starts:
                pipe.zscore(self.keys.window(start), server_name)
            scores = await pipe.execute()
        return [(start, int(score or 0)) for start, score in zip(starts, scores, strict=True)]

    async def health(self) -> Health:
        newest = await self.latest()
        count = await self.client.zcard(self.keys.index)
        if newest is None:
            return Health(None, None, None, count)
        summary = await self.summary(newest)
        age = time.time() - summary.end / 1000
        return Health(newest, round(age, 1), round(summary.total * 1000 / self.window_ms, 2), count)
