"""Redis memory per day of history (issue #28): ``python -m benchmarks.redis_memory``.

Writes one day of 30 s windows (1 300 events each, counts and breakdowns) through
`WindowStore.write` as a one-partition processor does, into a fresh prefix of a local
Redis, and sums ``MEMORY USAGE`` per kind of key. ``--shape recorded``: the recording's
30 wikis and shares; ``--shape zipf800``: 800 wikis, Zipf-skewed (about 300 per window).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter, defaultdict

import redis

from benchmarks.data import wiki_names
from devtools.servers import provide
from devtools.shapes import windows_like_recording
from wikipulse.store.keys import KeyLayout
from wikipulse.store.window_store import WindowStore
from wikipulse.store.writes import Batch

W = 30_000
DAY = 2880


def day_of_windows(shape: str, rng: random.Random) -> list[dict[str, int]]:
    if shape == "recorded":
        return windows_like_recording(DAY)
    names = wiki_names(800)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(names))]
    return [dict(Counter(rng.choices(names, weights, k=1300))) for _ in range(DAY)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=("recorded", "zipf800"), default="recorded")
    args = parser.parse_args()
    rng = random.Random(1)
    windows = day_of_windows(args.shape, rng)
    with provide(need=("redis",)) as found:
        client = redis.Redis.from_url(found.redis_url)
        prefix = f"memory:{time.time_ns()}:"
        store = WindowStore(client, KeyLayout(prefix))
        first = 1_767_225_600_000
        for i, counts in enumerate(windows):
            start = first + i * W
            parts = {}
            for name, n in counts.items():
                edit = rng.randint(0, n)
                new = rng.randint(0, n - edit)
                added, removed = rng.randint(0, 900 * n), rng.randint(0, 300 * n)
                parts[name] = [
                    n,
                    rng.randint(0, n),
                    edit,
                    new,
                    n - edit - new,
                    0,
                    0,
                    0,
                    added,
                    removed,
                ]
            batch = Batch(0, start + W, {start: counts}, breakdowns={start: parts})
            store.write(batch, partitions=1, window_ms=W, ttl_seconds=86_400)
        usage: dict[str, int] = defaultdict(int)
        keys: dict[str, int] = defaultdict(int)
        for key in client.scan_iter(store.keys.every, count=1000):
            parts_of = key.decode()[len(prefix) :].split(":")
            kind = ":".join(parts_of[:2]) if parts_of[0] == "rollup" else parts_of[0]
            usage[kind] += int(client.memory_usage(key, samples=0) or 0)
            keys[kind] += 1
            client.delete(key)
        wikis = sum(len(c) for c in windows) / len(windows)
        print(f"{args.shape}: one day, {len(windows)} windows, {wikis:.0f} wikis per window")
        for kind in sorted(usage):
            print(f"  {kind:12s} {keys[kind]:5d} keys {usage[kind] / 2**20:8.2f} MiB")


if __name__ == "__main__":
    main()
