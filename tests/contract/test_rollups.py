"""History at several resolutions (issue #28): complete windows roll up into 5-minute,
hourly and daily buckets, exact and complete like the windows they are made of.

Against a real Redis: an hour of the recorded shape through the in-process pipeline
(a crash before a commit, Redis losing everything, the recount), compared with a count
made here with the standard library; and the completeness and retention rules, written
through `WindowStore.write` as the processor writes.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import datetime

import pytest
import redis

from benchmarks.data import events
from devtools.observe import breakdown_rows
from devtools.truth import breakdown_row
from tests.support.inprocess import InProcessPipeline
from tests.support.names import Names
from wikipulse.store.keys import KeyLayout
from wikipulse.store.values import ALL_WIKIS, ROLLUPS, Rollup
from wikipulse.store.window_store import WindowStore
from wikipulse.store.writes import Batch

W, GRACE = 30_000, 5_000
FIVE, HOUR = 300_000, 3_600_000
Rows = dict[str, Counter[str]]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


def bucket_rows(client: redis.Redis, prefix: str, resolution: str, start: int) -> Rows:
    return breakdown_rows(client, KeyLayout(prefix).rollup(resolution, start))


def test_the_rollups_of_a_recorded_hour_equal_an_independent_count_through_a_recount(
    tmp_path, redis_url, client
):
    prefix = Names.fresh().prefix
    stream = list(events(155_000))  # an hour of the recorded shape, 43 events/s
    pipe = InProcessPipeline(tmp_path, redis_url, prefix, W, GRACE, ttl_seconds=86_400)
    try:
        for partition in (0, 1):  # the stream's start, marked in every partition
            pipe.heartbeat(stream[0][2], partition)
        for i, (name, _, time_ms, event_id, facts) in enumerate(stream):
            partition = zlib.crc32(name.encode()) % 2
            pipe.event(name.encode(), event_id, time_ms, partition, facts)
            if i % 5_000 == 4_999:
                pipe.commit_as_quix()
            if i == 90_000:  # Redis loses everything: recounted from the log start
                for key in client.scan_iter(f"{prefix}*"):
                    client.delete(key)
        last = stream[-1][2]
        for partition in (0, 1):
            pipe.heartbeat(last + W + GRACE, partition)
        pipe.commit_as_quix()
        store = pipe.store
    finally:
        pipe.close()

    # the independent count: every event's window, from its JSON
    windows: dict[int, Rows] = {}
    for name, body, _, _, _ in stream:
        obj = json.loads(body)
        ms = int(datetime.fromisoformat(obj["meta"]["dt"]).timestamp() * 1000)
        for wiki in (name, ""):
            row = windows.setdefault(ms - ms % W, {}).setdefault(wiki, Counter())
            row.update(breakdown_row(obj))
    first = min(windows)
    assert store.partial_starts(10) == [first]  # the stream's first window
    closed_until = last + W + GRACE - (last + W + GRACE) % W  # every partition closed to here
    since, until = first - HOUR, last + 2 * HOUR

    for resolution, length in (("5m", FIVE), ("1h", HOUR)):
        # the first window's bucket is listed partial, even with nothing else in it
        expected: dict[int, Rows] = {first - first % length: {}}
        for start, rows in windows.items():
            if start == first:
                continue  # partial: never in a bucket
            bucket = expected.setdefault(start - start % length, {})
            for wiki, row in rows.items():
                bucket.setdefault(wiki, Counter()).update(row)
        complete = store.series(resolution, since, until)
        assert [p.start for p in complete] == sorted(expected)
        for point in complete:
            ended = point.end <= closed_until
            holds_first = point.start <= first < point.end
            assert point.complete is (ended and not holds_first), (resolution, point.start)
            assert bucket_rows(client, prefix, resolution, point.start) == expected[point.start]
            assert point.breakdown.count == expected[point.start].get("", Counter())["count"]
        one = store.series(resolution, since, until, "commons.wikimedia.org")
        assert [p.breakdown.count for p in one] == [
            expected[p.start].get("commons.wikimedia.org", Counter())["count"] for p in complete
        ]


def write(store, partition, closed_end, windows, partitions=2, partial=None, rollups=ROLLUPS):
    batch = Batch(partition, closed_end, windows, partial=partial)
    return store.write(
        batch, partitions=partitions, window_ms=W, ttl_seconds=86_400, rollups=rollups
    )


S = 1_767_225_600_000  # 2026-01-01T00:00:00Z: a day, an hour and a 5-minute boundary


def test_a_bucket_is_complete_only_when_all_its_windows_are(client):
    store = WindowStore(client, KeyLayout(Names.fresh().prefix))
    # every window of the first five minutes, partition 0 closing past the bucket's end
    write(store, 0, S + FIVE, {S + i * W: {"a.org": 1} for i in range(10)})
    assert store.series("5m", S, S + FIVE) == []  # no window complete: nothing rolled up
    write(store, 1, S + FIVE - W, {S: {"b.org": 2}})  # partition 1 stops one window short
    [point] = store.series("5m", S, S + FIVE)
    assert not point.complete and point.breakdown.count == 9 + 2  # nine windows complete
    assert not client.zscore(store.keys.rollups("5m"), S)
    write(store, 0, S + FIVE + W, {S + FIVE: {"a.org": 1}})  # partition 0 runs on ...
    assert not store.series("5m", S, S + FIVE)[0].complete  # ... partition 1 still lags
    write(store, 1, S + FIVE, {})  # now every partition closed past the bucket
    [point] = store.series("5m", S, S + FIVE)
    assert point.complete and point.breakdown.count == 12
    assert store.series("5m", S, S + FIVE, "b.org")[0].breakdown.count == 2
    [hour] = store.series("1h", S, S + HOUR)
    assert not hour.complete and hour.breakdown.count == 12  # the hour goes on


def test_a_bucket_holding_a_partial_window_is_never_complete(client):
    store = WindowStore(client, KeyLayout(Names.fresh().prefix))
    write(
        store, 0, S + FIVE, {S: {"a.org": 5}, S + W: {"a.org": 3}}, partitions=1, partial=(S, S + W)
    )
    assert store.partial_starts(10) == [S] and store.starts(10) == [S + W]
    [point] = store.series("5m", S, S + FIVE)
    assert not point.complete and point.breakdown.count == 3  # the partial window is left out
    assert client.zscore(store.keys.rollups_partial("5m"), S) is not None


def test_retention_trims_each_resolution(client):
    store = WindowStore(client, KeyLayout(Names.fresh().prefix))
    short = (Rollup("5m", 300, 900), Rollup("1h", 3_600, 7_200), Rollup("1d", 86_400, 0))
    for i in range(4 * 12):  # four hours, one window per five minutes
        start = S + i * FIVE
        write(store, 0, start + FIVE, {start: {"a.org": 1}}, partitions=1, rollups=short)
    newest = S + 47 * FIVE
    fives = [p.start for p in store.series("5m", S - HOUR, S + 5 * HOUR)]
    assert fives == [newest - 2 * FIVE, newest - FIVE, newest]  # the last 900 s
    assert 0 < client.ttl(store.keys.rollup("5m", newest)) <= 900
    hours = [p.start for p in store.series("1h", S - HOUR, S + 5 * HOUR)]
    assert hours == [S + 2 * HOUR, S + 3 * HOUR]  # the last 7 200 s
    assert 0 < client.ttl(store.keys.rollup("1h", S + 3 * HOUR)) <= 7_200
    assert not list(client.scan_iter(store.keys.rollup_prefix("1d") + "*"))  # turned off
    assert store.series("1d", S - 86_400_000, S + 86_400_000) == []
    assert ALL_WIKIS in {k.decode() for k in client.hkeys(store.keys.rollup("5m", newest))}
