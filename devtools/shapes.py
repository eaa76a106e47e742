"""Streams with the real stream's shape, for tests and benchmarks.

The shape is the bundled recording's: its wikis with their shares of the events
(commons.wikimedia.org about 40 %, www.wikidata.org 14 %, en.wikipedia.org 10 %, ...).
Windows drawn from it are what a day of Wikimedia looks like window by window, from a
seeded generator, so a test gives the same answer on every run. Their breakdowns
(`breakdowns_like_recording`) are drawn from the recording too: each wiki's events are
resampled from its own recorded events (bots, kinds of change, sizes).
"""

from __future__ import annotations

import random
from collections import Counter

import orjson

from devtools.recordings import RECENTCHANGE, load_events
from wikipulse.events import CHANGE_TYPES, facts_of, read_facts
from wikipulse.store.values import BREAKDOWN
from wikipulse.store.window_store import WindowStore
from wikipulse.store.writes import Batch


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


def recorded_facts() -> dict[str, list[tuple[int, bool, int | None]]]:
    """Each wiki's recorded events as `wikipulse.events.read_facts` gives them."""
    found: dict[str, list[tuple[int, bool, int | None]]] = {}
    for raw in load_events(RECENTCHANGE):
        if b'"canary"' in raw:
            continue
        event = orjson.loads(raw)
        found.setdefault(event["server_name"], []).append(read_facts(facts_of(event)))
    return found


def breakdowns_like_recording(
    windows: list[dict[str, int]], seed: int = 20260620, bots: dict[str, int] | None = None
) -> list[dict[str, list[int]]]:
    """The `wikipulse.store.values.BREAKDOWN` of each wiki in each of ``windows``: its count of
    events resampled from its own recorded events (a wiki the recording lacks: humans'
    edits without sizes). ``bots``: wiki -> events of each window that are a bot's edits
    of 200 bytes instead (a bot run)."""
    facts = recorded_facts()
    rng = random.Random(seed)
    edit = CHANGE_TYPES.index("edit")
    found = []
    for counts in windows:
        parts = {}
        for name, count in counts.items():
            values = [0] * len(BREAKDOWN)
            values[0] = count
            run = min(count, (bots or {}).get(name, 0))
            drawn = rng.choices(facts[name], k=count - run) if name in facts else []
            drawn += [(edit, True, 200)] * run
            drawn += [(edit, False, None)] * (count - len(drawn))
            for kind, bot, delta in drawn:
                values[1] += bot
                values[2 + kind] += 1
                if delta is not None:
                    values[-2 if delta >= 0 else -1] += abs(delta)
            parts[name] = values
        found.append(parts)
    return found


def write_complete(
    store: WindowStore,
    last: int,
    windows: list[dict[str, int]],
    window_ms: int = 30_000,
    breakdowns: list[dict[str, list[int]]] | None = None,
) -> list[int]:
    """``windows`` as consecutive complete windows ending with the one starting at ``last``,
    written as a one-partition processor writes them (with ``breakdowns``, one per
    window, when given); returns their starts, oldest first."""
    starts = [last - i * window_ms for i in range(len(windows) - 1, -1, -1)]
    parts = breakdowns if breakdowns is not None else [{} for _ in windows]
    for start, counts, found in zip(starts, windows, parts, strict=True):
        store.write(
            Batch(0, start + window_ms, {start: counts}, breakdowns={start: found}),
            partitions=1,
            window_ms=window_ms,
            ttl_seconds=7 * 24 * 3600,
        )
    return starts
