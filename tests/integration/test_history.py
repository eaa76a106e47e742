"""History from a first start: an hour of recorded-shape events backfilled through the
real producer and two processor replicas, the producer SIGKILLed and restarted and a
replica SIGKILLed and restarted while they count it; every 5-minute bucket listed
complete equals an independent count of the hour (counts and breakdowns, per wiki and
for all wikis), and so does every 30 s window.
"""

from __future__ import annotations

import time
from collections import Counter

from devtools.observe import breakdown_rows, metric, wait_for
from devtools.recordings import RECENTCHANGE, load_events
from devtools.servers import free_port
from devtools.truth import truth, truth_breakdowns
from tests.support.pipeline import assert_index_matches_truth
from wikipulse.store.keys import KeyLayout
from wikipulse.store.window_store import WindowStore

WINDOW_S, FIVE_MS = 30, 300_000
HISTORY_S, RATE = 3600, 20.0  # 72 000 events, 120 windows, 12 five-minute buckets


def test_an_hours_history_rolls_up_exactly_through_a_producer_and_a_replica_sigkill(
    pipeline, replay, redis_client
):
    replay.fill_history(load_events(RECENTCHANGE), HISTORY_S, RATE)
    history = list(replay.log)
    window = {"WINDOW_SECONDS": str(WINDOW_S), "GRACE_SECONDS": "5", "HEARTBEAT_SECONDS": "0.5"}
    port = free_port()
    producer = pipeline.producer(BACKFILL="1h", METRICS_PORT=str(port), **window)
    replicas = [pipeline.processor(0, **window), pipeline.processor(1, **window)]
    wait_for(lambda: replay.connections, 30, "the producer to connect")
    first = replay.connections[0]
    assert first.offset is not None and first.since is not None
    served = history[first.offset :]

    # the producer dies a quarter of the way through the history, and starts again
    wait_for(
        lambda: metric(producer, "wikipulse_producer_events_published_total") >= len(served) / 4,
        60,
        "a quarter of the history published",
        0.05,
    )
    producer.kill()
    pipeline.producer("producer-2", BACKFILL="1h", **window)
    # a replica dies once windows are published, and starts again
    store = WindowStore(redis_client, KeyLayout(pipeline.names.prefix))
    wait_for(lambda: len(store.starts(1000)) >= 10, 120, "ten windows published", 0.1)
    replicas[0].kill()
    time.sleep(2)
    pipeline.processor(0, **window)

    window_ms = WINDOW_S * 1000
    counts, rows = truth(served, window_ms), truth_breakdowns(served, window_ms)
    assert sum(sum(c.values()) for c in counts.values()) == len(served)
    windows = sorted(counts)[:-1]  # the newest may still be open: the stream is quiet now
    assert_index_matches_truth(
        pipeline,
        redis_client,
        {s: counts[s] for s in windows},
        timeout=240,
        breakdowns={s: rows[s] for s in windows},
    )

    expected: dict[int, dict[str, Counter[str]]] = {}
    for start in windows:
        bucket = expected.setdefault(start - start % FIVE_MS, {})
        for wiki, row in rows[start].items():
            bucket.setdefault(wiki, Counter()).update(row)
    first_bucket = windows[0] - windows[0] % FIVE_MS
    buckets = store.series("5m", first_bucket, windows[-1] + window_ms)
    assert buckets[0].start == first_bucket
    complete = [b.start for b in buckets if b.complete]
    # the first bucket holds the stream's partial first window, the last may be open
    assert len(complete) >= len(expected) - 2, (complete, sorted(expected))
    assert not buckets[0].complete  # it holds the stream's first window, published partial
    for start in complete:
        found = breakdown_rows(redis_client, store.keys.rollup("5m", start))
        assert found == expected[start], start
