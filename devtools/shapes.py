"""Streams with the real stream's shape, for tests and benchmarks.

The shape is the bundled recording's: its wikis with their shares of the events
(commons.wikimedia.org about 40 %, www.wikidata.org 14 %, en.wikipedia.org 10 %, ...).
Windows drawn from it are what a day of Wikimedia looks like window by window, from a
seeded generator, so a test gives the same answer on every run.
"""

from __future__ import annotations

import random
from collections import Counter

import orjson

from devtools.recordings import RECENTCHANGE, load_events
from wikipulse.store import Batch, WindowStore


def recorded_shares() -> dict[str, float]:
    """Each wiki's share of the events in the bundled recording."""
    names = Counter(
        orjson.loads(e)["server_name"] for e in load_events(RECENTCHANGE) if b'"canary"' not in e
    )
    total = sum(names.values())
    return {name: count / total for name, count in names.most_common()}


def windows_like_recording(
    count: int, events_per_window: int = 1_300, seed: int = 20260620
) -> list[dict[str, int]]:
    """``count`` windows of per-wiki counts, each ``events_per_window`` events drawn
    from the recording's shares (the recording runs at about 43 events/s)."""
    shares = recorded_shares()
    names, weights = list(shares), list(shares.values())
    rng = random.Random(seed)
    return [dict(Counter(rng.choices(names, weights, k=events_per_window))) for _ in range(count)]


def write_complete(
    store: WindowStore, last: int, windows: list[dict[str, int]], window_ms: int = 30_000
) -> list[int]:
    """``windows`` as consecutive complete windows ending with the one starting at ``last``,
    written as a one-partition processor writes them; returns their starts, oldest first."""
    starts = [last - i * window_ms for i in range(len(windows) - 1, -1, -1)]
    for start, counts in zip(starts, windows, strict=True):
        store.write(
            Batch(0, start + window_ms, {start: counts}),
            partitions=1,
            window_ms=window_ms,
            ttl_seconds=7 * 24 * 3600,
        )
    return starts
