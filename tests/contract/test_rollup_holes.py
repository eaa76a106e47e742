"""History buckets are never listed complete short or twice: the holes an exactly-once
review of the rollups found (each reproduced red against a real Redis, then fixed in
wikipulse/store/write_windows.lua and processor/sink.py), kept as specifications.

- H1: a bucket holding a window published partial stays partial, however soon the
  window indexes are trimmed (`WINDOW_TTL_SECONDS` shorter than a bucket, or a step
  across midnight);
- H2: a re-created raw topic does not complete the buckets the old topic's windows
  still owed;
- H3: a window older than the index's retention is never published, nor rolled up,
  again;
- H4: a bucket waiting for its windows has no TTL;
- H5: even under a volatile-* eviction policy (which the sink refuses, see
  tests/contract/test_sink.py) a waiting bucket cannot be evicted.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from devtools.observe import wait_for
from devtools.servers import free_port
from tests.support.inprocess import InProcessPipeline, OfflineGroup
from tests.support.names import Names
from wikipulse.store.keys import KeyLayout
from wikipulse.store.values import ROLLUPS, Rollup
from wikipulse.store.window_store import WindowStore
from wikipulse.store.writes import Batch

W, GRACE = 30_000, 5_000
FIVE, HOUR, DAY = 300_000, 3_600_000, 86_400_000
D = 1_767_225_600_000  # 2026-01-01T00:00:00Z
EN = b"en.wikipedia.org"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


def write(
    store,
    partition,
    closed_end,
    windows,
    *,
    partitions=1,
    partial=None,
    ttl=86_400,
    rollups=ROLLUPS,
    source="",
):
    batch = Batch(partition, closed_end, windows, partial=partial)
    return store.write(
        batch, partitions=partitions, window_ms=W, ttl_seconds=ttl, rollups=rollups, source=source
    )


def listed(client, store, resolution, start):
    k = store.keys
    return {
        "complete": client.zscore(k.rollups(resolution), start) is not None,
        "partial": client.zscore(k.rollups_partial(resolution), start) is not None,
        "pending": client.zscore(k.rollups_pending(resolution), start) is not None,
    }


# -- H1: the bucket's partial flag is lost when the window partial index is trimmed ------


def test_h1_a_bucket_with_a_partial_window_stays_partial_once_the_index_is_trimmed(client):
    """WINDOW_TTL_SECONDS=3600 (allowed: ge=60). Partial window at 10:00; later complete
    windows of the same day; the day closes. The day must not be listed complete."""
    store = WindowStore(client, KeyLayout(Names.fresh().prefix))
    sp = D + 10 * HOUR
    write(
        store,
        0,
        sp + 2 * W,
        {sp: {"a.org": 5}, sp + W: {"a.org": 1}},
        partial=(0, sp + W),
        ttl=3600,
    )
    assert store.partial_starts(5) == [sp]
    assert listed(client, store, "1d", D)["partial"]
    for i in range(1, 30):  # a window every 5 minutes until 12:30, one step each
        s = sp + i * FIVE
        write(store, 0, s + W, {s: {"a.org": 1}}, ttl=3600)
    write(store, 0, D + DAY + W, {}, ttl=3600)  # the day closes
    state = listed(client, store, "1d", D)
    assert not state["complete"], "daily bucket listed complete although window sp is partial"


def test_h1_a_partial_first_window_keeps_its_day_partial_across_a_midnight_step(client):
    """Default WINDOW_TTL (1 day). The partial window is the day's first (00:00). A step
    that publishes the day's last window and the next day's first window together."""
    store = WindowStore(client, KeyLayout(Names.fresh().prefix))
    write(store, 0, D + 2 * W, {D: {"a.org": 5}, D + W: {"a.org": 1}}, partial=(0, D + W))
    assert listed(client, store, "1d", D)["partial"]
    for i in range(1, 288):
        s = D + i * FIVE
        write(store, 0, s, {s: {"a.org": 1}})  # counts only, the window stays open
    last = D + DAY - W
    # one batch: the day's last window and the next day's first, closed together
    write(store, 0, D + DAY + W, {last: {"a.org": 1}, D + DAY: {"a.org": 1}})
    state = listed(client, store, "1d", D)
    assert not state["complete"], "daily bucket listed complete although window D is partial"


# -- H2: a re-created raw topic judges the old topic's pending buckets ----------------------


@pytest.fixture
def start(tmp_path, redis_url) -> Iterator[Any]:
    prefix = Names.fresh().prefix
    started: list[InProcessPipeline] = []

    def new(**options: Any) -> InProcessPipeline:
        options.setdefault("group", OfflineGroup())
        pipe = InProcessPipeline(
            tmp_path / str(len(started)),
            redis_url,
            prefix,
            window_ms=W,
            grace_ms=GRACE,
            ttl_seconds=86_400,
            **options,
        )
        started.append(pipe)
        return pipe

    yield new
    for pipe in started:
        pipe.close()


def test_h2_a_new_raw_topic_does_not_complete_what_the_old_one_owed(start, client):
    b = D + 10 * HOUR  # a 5-minute bucket
    old = start(source="old-topic")
    for p in (0, 1):
        old.heartbeat(b - W, p)  # the stream's start: window b - W is the partial one
    for i in range(10):  # one event per window of the bucket, on partition 0
        old.event(EN, f"o{i}", b + i * W + 1_000, 0)
    old.heartbeat(b + FIVE + GRACE + 1, 0)  # partition 0 closes past the bucket
    old.heartbeat(b + FIVE - W + GRACE + 1, 1)  # partition 1 one window short
    old.commit_as_quix()
    store = old.store
    assert not listed(client, store, "5m", b)["complete"]
    # the raw topic is deleted and created again; its producer starts an hour later
    # (BACKFILL=0, or the new topic's history starts later)
    new = start(source="new-topic")
    t = b + HOUR
    for p in (0, 1):
        new.heartbeat(t, p)
    new.event(EN, "n0", t + 1_000, 0)
    for p in (0, 1):
        new.heartbeat(t + 3 * W + GRACE, p)
    new.commit_as_quix()
    [point] = store.series("5m", b, b + FIVE)
    # the old topic held 10 events in this bucket; window b + 9W was never published
    assert not (point.complete and point.breakdown.count != 10), (
        f"bucket listed complete with {point.breakdown.count} of 10 events"
    )
    assert listed(client, store, "5m", b)["partial"]


# -- H3: a window re-published after the complete index trimmed it is rolled up twice ------


def test_h3_a_window_older_than_the_index_is_never_rolled_up_twice(start, client):
    h = D + 10 * HOUR
    old = start(source="old-topic")
    for p in (0, 1):
        old.heartbeat(h - W, p)
    for i in range(12):  # an event every 5 minutes in hour h
        old.event(EN, f"o{i}", h + i * FIVE + 1_000, i % 2)
    # the stream runs on for more than a day (WINDOW_TTL_SECONDS default: 1 day)
    later = h + DAY + 2 * HOUR
    old.event(EN, "late-day", later, 0)
    for p in (0, 1):
        old.heartbeat(later + W + GRACE + 1, p)
    old.commit_as_quix()
    store = old.store
    [before] = store.series("1h", h, h + HOUR)
    assert before.complete and before.breakdown.count == 12
    # topic re-created; its producer backfills 2 days (BACKFILL=2d)
    new = start(source="new-topic")
    for p in (0, 1):
        new.heartbeat(h - W, p)
    for i in range(12):
        new.event(EN, f"n{i}", h + i * FIVE + 1_000, i % 2)
    for p in (0, 1):
        new.heartbeat(h + HOUR + W + GRACE + 1, p)
    new.commit_as_quix()
    [after] = store.series("1h", h, h + HOUR)
    assert after.breakdown.count == 12, f"complete hourly bucket now holds {after.breakdown.count}"


# -- H4: a pending bucket expires while it waits for a lagging partition --------------------


def test_h4_a_bucket_waiting_for_a_stalled_partition_never_expires(client):
    store = WindowStore(client, KeyLayout(Names.fresh().prefix))
    short = (Rollup("5m", 300, 2), Rollup("1h", 3_600, 0), Rollup("1d", 86_400, 0))
    b = D
    # partition 0 closes the whole bucket with 10 windows, partition 1 all but one
    write(
        store,
        0,
        b + FIVE,
        {b + i * W: {"a.org": 1} for i in range(10)},
        partitions=2,
        rollups=short,
    )
    write(store, 1, b + FIVE - W, {}, partitions=2, rollups=short)
    assert store.series("5m", b, b + FIVE)[0].breakdown.count == 9
    time.sleep(3)  # a stall longer than the bucket's TTL (a week by default)
    write(store, 1, b + FIVE, {}, partitions=2, rollups=short)
    [point] = store.series("5m", b, b + FIVE)
    assert not (point.complete and point.breakdown.count != 10), (
        f"bucket complete with {point.breakdown.count} of 10"
    )


# -- checks expected to hold -------------------------------------------------------------


def _dump(client, prefix):
    return {k: (client.dump(k), client.pttl(k)) for k in client.scan_iter(f"{prefix}*")}


def _restore(client, prefix, dumped):
    for k in client.scan_iter(f"{prefix}*"):
        client.delete(k)
    for k, (v, pttl) in dumped.items():
        client.restore(k, pttl if pttl > 0 else 0, v, replace=True)


def _feed_windows(pipe, first, last, base, fed, facts_cycle=(b"eb10", b"nh-7", b"lh", b"eh3")):
    for n in range(first, last + 1):
        for i, facts in enumerate(facts_cycle):
            wiki, p = (EN, 0) if i % 2 == 0 else (b"de.wikipedia.org", 1)
            pipe.event(wiki, f"{n}-{i}", base + n * W + 1_000 + i, p, facts)
            fed[base + n * W] = fed.get(base + n * W, 0) + 1
        for p in (0, 1):
            pipe.heartbeat(base + n * W + W - 1, p)


def test_a_recount_after_an_older_snapshot_rebuilds_buckets_exactly(start, client):
    pipe = start(source="t")
    base = D + 10 * HOUR - W  # window 0 (partial) just before the 10:00 bucket
    fed: dict[int, int] = {}
    _feed_windows(pipe, 0, 14, base, fed)  # through the middle of bucket 10:00
    pipe.commit_as_quix()
    older = _dump(client, pipe.prefix)
    _feed_windows(pipe, 15, 25, base, fed)  # rolls up more windows of 10:00 and 10:05
    pipe.commit_as_quix()
    _restore(client, pipe.prefix, older)  # Redis back to the older snapshot
    _feed_windows(pipe, 26, 40, base, fed)
    for _ in range(4):
        pipe.commit_as_quix()
    for p in (0, 1):
        pipe.heartbeat(base + 42 * W + GRACE + 1, p)
    pipe.commit_as_quix()
    store = pipe.store
    for b0 in (D + 10 * HOUR, D + 10 * HOUR + FIVE):
        [pt] = store.series("5m", b0, b0 + FIVE)
        truth = sum(c for s, c in fed.items() if b0 <= s < b0 + FIVE)
        assert pt.complete and pt.breakdown.count == truth
        assert pt.breakdown.bot == truth // 4 and pt.breakdown.added == 13 * truth // 4
        assert pt.breakdown.removed == 7 * truth // 4


def test_a_window_finalized_by_two_partitions_adds_up_in_breakdowns_and_buckets(client):
    store = WindowStore(client, KeyLayout(Names.fresh().prefix))
    bd = {D: {"a.org": [3, 1, 3, 0, 0, 0, 0, 0, 30, 0]}}
    store.write(
        Batch(0, D + W, {D: {"a.org": 3}}, breakdowns=bd),
        partitions=2,
        window_ms=W,
        ttl_seconds=86_400,
    )
    bd2 = {D: {"a.org": [2, 2, 0, 2, 0, 0, 0, 0, 0, 5]}}
    store.write(
        Batch(1, D + FIVE, {D: {"a.org": 2}}, breakdowns=bd2),
        partitions=2,
        window_ms=W,
        ttl_seconds=86_400,
    )
    w = store.breakdown(D, "a.org")
    allw = store.breakdown(D)
    [pt] = store.series("5m", D, D + FIVE, "a.org")
    assert w.count == 5 and w.bot == 3 and w.added == 30 and w.removed == 5
    assert allw == w and pt.breakdown == w


# -- H5: a volatile-* eviction policy (accepted by the sink) evicts pending buckets -------


@pytest.fixture
def evicting_redis(tmp_path) -> Iterator[redis.Redis]:
    """A Redis of its own, 3 MB at most and evicting volatile keys (LRU).

    Not the shared `redis_url`: this test fills memory until Redis evicts, and eviction
    is the whole server's. On the shared server it would evict other tests' keys (with
    ``REDIS_URL``, someone else's), its limit would have to be guessed from whatever the
    session stored before, and a test stopped between setting the policy and restoring
    it would leave a server that evicts, which the sink refuses for every later test.
    """
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(tmp_path)]
    command += ["--maxmemory", "3mb", "--maxmemory-policy", "volatile-lru"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    try:
        wait_for(lambda: _pings(client), 10, "the evicting redis-server")
        yield client
    finally:
        client.close()
        server.terminate()
        server.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_h5_a_waiting_bucket_cannot_be_evicted_even_under_volatile_eviction(evicting_redis):
    c = evicting_redis
    store = WindowStore(c, KeyLayout("ev:"))
    b = D
    # bucket b: windows b..b+9W finalized by partition 0, partition 1 lags one window
    write(store, 0, b + FIVE, {b + i * W: {"a.org": 1} for i in range(10)}, partitions=2)
    write(store, 1, b + FIVE - W, {}, partitions=2)
    assert store.series("5m", b, b + FIVE)[0].breakdown.count == 9
    # later, other published windows (TTL'd) fill memory: the LRU bucket is evicted
    big = {f"wiki{j}.org": 1 for j in range(400)}
    s = b + DAY
    for i in range(200):
        write(
            store,
            0,
            s + (i + 1) * W,
            {s + i * W: big},
            partitions=1,
            source="other",
            rollups=(),
        )
    assert c.info("stats")["evicted_keys"] > 0, "no memory pressure: nothing proven"
    write(store, 1, b + FIVE, {}, partitions=2)  # partition 1 closes the bucket
    [pt] = store.series("5m", b, b + FIVE)
    assert not (pt.complete and pt.breakdown.count != 10)


def test_h1_through_the_sink_a_day_that_began_partial_is_never_complete(
    tmp_path, redis_url, client
):
    """The real sink (in-process), WINDOW_TTL_SECONDS=3600: a stream starting at 10:00."""
    pipe = InProcessPipeline(tmp_path, redis_url, Names.fresh().prefix, W, GRACE, ttl_seconds=3600)
    try:
        t0 = D + 10 * HOUR
        for p in (0, 1):
            pipe.heartbeat(t0, p)  # the producer marks the stream's start
        pipe.event(EN, "first", t0 + 1_000, 0)
        pipe.event(b"de.wikipedia.org", "first-de", t0 + 2_000, 1)
        pipe.commit_as_quix()
        for h in range(1, 15):  # one event an hour until 00:00, heartbeats after each
            t = t0 + h * HOUR
            pipe.event(EN, f"e{h}", t + 1_000, 0)
            for p in (0, 1):
                pipe.heartbeat(t + W + GRACE + 1, p)
            pipe.commit_as_quix()
        store = pipe.store
        [day] = store.series("1d", D, D + DAY)
        assert not day.complete, "day listed complete without its partial first window's 2 events"
    finally:
        pipe.close()


# -- a second review: what expired is never read as a complete zero; history outlives ----


def test_r2_a_window_or_bucket_whose_counts_expired_is_never_read_as_a_complete_zero(client):
    """Keys expire on the wall clock, the indexes are trimmed only when the processor
    publishes: while it stalls, they list what expired. Readers leave it out."""
    store = WindowStore(client, KeyLayout(Names.fresh().prefix))
    short = (Rollup("5m", 300, 2), Rollup("1h", 3_600, 0), Rollup("1d", 86_400, 0))
    write(store, 0, D + FIVE, {D + i * W: {"a.org": 3} for i in range(10)}, ttl=2, rollups=short)
    assert store.series("5m", D, D + FIVE)[0].breakdown.count == 30
    time.sleep(3)  # the processor stalls past both TTLs (production: >= 60 s)
    windows = store.series("window", D, D + FIVE)
    buckets = store.series("5m", D, D + FIVE)
    wrong = [(p.start, p.breakdown.count) for p in windows if p.complete and p.breakdown.count != 3]
    assert not wrong, f"windows read complete with wrong counts: {wrong[:3]}"
    assert not [b for b in buckets if b.complete and b.breakdown.count != 30]


def test_r2_the_newest_windows_during_a_stall_are_exact_or_gone(client):
    store = WindowStore(client, KeyLayout(Names.fresh().prefix))
    write(store, 0, D + 3 * W, {D: {"a.org": 3}, D + W: {"a.org": 4}}, ttl=2)
    # a 2 s TTL trims the index to the newest window at once
    assert [(w.start, w.total) for w in store.windows(5)] == [(D + W, 4)]
    time.sleep(3)
    assert store.windows(5) == []
    assert store.leaderboard(D + W, 10) is None
    assert store.latest() is None


def test_r1_history_shorter_than_the_windows_is_refused():
    """A bucket gone while its windows are still indexed could be made again, short,
    from one window counted anew (a re-created topic's backfill) and listed complete."""
    from pydantic import ValidationError

    from processor.settings import ProcessorSettings

    with pytest.raises(ValidationError, match="ROLLUP_5M_TTL_SECONDS=3600"):
        ProcessorSettings(rollup_5m_ttl_seconds=3600, window_ttl_seconds=86_400)
    ProcessorSettings(rollup_5m_ttl_seconds=0, window_ttl_seconds=86_400)  # off: fine
    ProcessorSettings(rollup_5m_ttl_seconds=86_400, window_ttl_seconds=86_400)
