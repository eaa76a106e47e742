"""Redis is a view of the raw topic: what it loses is recounted from Kafka, and no
window is published complete with counts that lack records (issues #24 and #25).

In-process (`tests.support.inprocess`): the real pipeline and sink against a real
Redis; Kafka's side (committed offsets, low watermarks, the seek after a back-pressure)
is `OfflineGroup` and `read_again`, as Quix does it. Each test ends with every window
compared with what was fed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from prometheus_client import REGISTRY
from quixstreams.sinks import SinkBackpressureError

from tests.support.inprocess import DLQ, InProcessPipeline, OfflineGroup
from tests.support.names import Names

W = 30_000
EN, DE = b"en.wikipedia.org", b"de.wikipedia.org"


@pytest.fixture
def start(tmp_path, redis_url) -> Iterator[Callable[..., InProcessPipeline]]:
    """Starts replicas of one processor (one prefix, one consumer group by default)."""
    prefix = Names.fresh().prefix
    group = OfflineGroup()
    started: list[InProcessPipeline] = []

    def new(**options: Any) -> InProcessPipeline:
        options.setdefault("group", group)
        pipe = InProcessPipeline(
            tmp_path / str(len(started)), redis_url, prefix, window_ms=W, grace_ms=5_000, **options
        )
        started.append(pipe)
        return pipe

    yield new
    for pipe in started:
        pipe.close()


def stream(
    pipe: InProcessPipeline, first: int, last: int, per_window: int = 4
) -> Counter[tuple[int, str]]:
    """Events in windows ``first`` to ``last`` (window numbers) on both partitions, each
    window followed by a heartbeat per partition; returns what was fed per window."""
    fed: Counter[tuple[int, str]] = Counter()
    for n in range(first, last + 1):
        for i in range(per_window):
            wiki, partition = (EN, 0) if i % 2 == 0 else (DE, 1)
            pipe.event(wiki, f"{n}-{i}", n * W + 1_000 + i, partition)
            fed[n * W, wiki.decode()] += 1
        for partition in (0, 1):
            pipe.heartbeat(n * W + W - 1, partition)
    return fed


def published(pipe: InProcessPipeline) -> tuple[dict[tuple[int, str], int], list[int], list[int]]:
    """Counts of the published windows, the complete starts, the partial starts."""
    store = pipe.store
    complete, partial = store.starts(1000), store.partial_starts(1000)
    counts = {
        (start, wiki): count
        for start in complete + partial
        for wiki, count in store.counts([start])[start].items()
    }
    return counts, complete, partial


def close_all(pipe: InProcessPipeline, n: int) -> None:
    for partition in (0, 1):
        pipe.heartbeat(n * W + 10_000, partition)
    pipe.commit_as_quix()


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def snapshot(client: redis.Redis, prefix: str) -> dict[bytes, bytes]:
    """Every key of ``prefix``, dumped: a Redis snapshot of this deployment."""
    return {key: client.dump(key) for key in client.scan_iter(f"{prefix}*")}  # type: ignore[misc]


def restore(client: redis.Redis, prefix: str, dumped: dict[bytes, bytes]) -> None:
    """Redis restarted from ``dumped``: every write since is lost."""
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    for key, value in dumped.items():
        client.restore(key, 0, value, replace=True)


def test_the_first_window_of_a_stream_is_published_partial_and_the_rest_complete(start):
    """Hole 7 of #25: a stream's first window starts before its first record."""
    pipe = start()
    fed = stream(pipe, 10, 13)
    close_all(pipe, 14)
    counts, complete, partial = published(pipe)
    assert partial == [10 * W]
    assert complete == [11 * W, 12 * W, 13 * W]
    assert counts == fed
    assert not pipe.store.is_complete(10 * W) and pipe.store.leaderboard(10 * W, 5) is None


def test_redis_restored_from_an_older_snapshot_is_recounted_from_kafka(start, redis_url):
    """#24: Redis lost writes it had acknowledged, after Kafka committed past them."""
    pipe = start()
    client = redis.Redis.from_url(redis_url)
    fed = stream(pipe, 10, 11)
    pipe.commit_as_quix()
    older = snapshot(client, pipe.prefix)
    fed += stream(pipe, 12, 13)
    pipe.commit_as_quix()  # Kafka's group committed all of it
    restore(client, pipe.prefix, older)
    recounts = metric("wikipulse_processor_recounts_total")
    fed += stream(pipe, 14, 15)
    backpressures = pipe.commit_as_quix()
    close_all(pipe, 16)
    counts, complete, partial = published(pipe)
    assert counts == fed
    assert partial == [10 * W] and complete == [W * n for n in range(11, 16)]
    assert backpressures >= 2  # refused (Redis went back), then sought back
    assert metric("wikipulse_processor_recounts_total") >= recounts + 1


def test_redis_that_lost_everything_mid_stream_is_recounted_from_the_log_start(start, redis_url):
    pipe = start()
    client = redis.Redis.from_url(redis_url)
    fed = stream(pipe, 10, 12)
    pipe.commit_as_quix()
    for key in client.scan_iter(f"{pipe.prefix}*"):  # FLUSHALL, for this deployment
        client.delete(key)
    fed += stream(pipe, 13, 14)
    pipe.commit_as_quix()
    close_all(pipe, 15)
    counts, complete, partial = published(pipe)
    assert counts == fed
    assert partial == [10 * W] and complete == [W * n for n in range(11, 15)]


def test_a_replica_started_after_redis_lost_writes_seeks_back(start, redis_url):
    """The processors were down when Redis went back: the group's committed offsets
    are ahead of Redis when they start."""
    first = start()
    client = redis.Redis.from_url(redis_url)
    fed = stream(first, 10, 11)
    first.commit_as_quix()
    older = snapshot(client, first.prefix)
    fed += stream(first, 12, 13)
    first.commit_as_quix()
    restore(client, first.prefix, older)
    second = start()  # the same group: it starts at the committed offsets
    second._log = first._log  # the same raw topic
    fed += stream(second, 14, 15)
    second.commit_as_quix()
    close_all(second, 16)
    counts, _, partial = published(second)
    assert counts == fed and partial == [10 * W]


def test_dead_letters_of_recounted_records_are_not_written_twice(start, redis_url):
    pipe = start()
    client = redis.Redis.from_url(redis_url)
    fed = stream(pipe, 10, 10)
    pipe.feed(b"\xff not json", b"\x00unkeyed", 10 * W + 2_000)
    fed += stream(pipe, 11, 11)
    pipe.commit_as_quix()
    for key in client.scan_iter(f"{pipe.prefix}*"):
        client.delete(key)
    fed += stream(pipe, 12, 12)
    pipe.commit_as_quix()
    close_all(pipe, 13)
    assert published(pipe)[0] == fed
    assert [r.value for r in pipe.produced if r.topic == DLQ] == [b"\xff not json"]


def test_records_deleted_by_retention_before_they_were_counted_make_their_windows_partial(
    start, redis_url
):
    pipe = start()
    client = redis.Redis.from_url(redis_url)
    fed = stream(pipe, 10, 11)
    pipe.commit_as_quix()
    older = snapshot(client, pipe.prefix)
    stream(pipe, 12, 13)  # counted, then lost by Redis ...
    pipe.commit_as_quix()
    restore(client, pipe.prefix, older)
    for partition in (0, 1):  # ... and deleted by retention since
        pipe.group.low[partition] = pipe.group.committed[partition]
    fed += stream(pipe, 14, 15)
    pipe.commit_as_quix()
    close_all(pipe, 16)
    counts, complete, partial = published(pipe)
    # 11 was open when the records went (one of them could have been its), 12 and 13
    # have nothing left to count, 14 holds the first record after the cut
    assert partial == [10 * W, 11 * W, 14 * W]
    assert complete == [15 * W]
    assert {k: v for k, v in counts.items() if k[0] == 15 * W} == {
        k: v for k, v in fed.items() if k[0] == 15 * W
    }
    assert metric("wikipulse_processor_uncountable_offsets_total") > 0


def test_a_raw_topic_created_anew_neither_double_counts_nor_publishes_early(start):
    """Hole 3 of #25: offsets restart at 0 in a re-created topic and its producer
    backfills the last hour, events already counted."""
    old = start(source="old-topic-id")
    fed = stream(old, 10, 12)
    close_all(old, 13)
    _, complete_before, _ = published(old)
    assert complete_before == [11 * W, 12 * W]
    new = start(source="new-topic-id", group=OfflineGroup())
    stream(new, 11, 13)  # the backfill: windows 11 and 12 again, and a new one
    new.heartbeat(14 * W + 10_000, partition=0)  # only one partition of the new topic
    new.commit_as_quix()
    counts, complete, _ = published(new)
    assert complete == [11 * W, 12 * W]  # 13 waits for the new topic's partition 1
    assert {k: v for k, v in counts.items() if k[0] < 13 * W} == fed
    close_all(new, 15)
    counts, complete, _ = published(new)
    assert complete == [11 * W, 12 * W, 13 * W]
    assert counts[13 * W, "en.wikipedia.org"] == 2 and counts[13 * W, "de.wikipedia.org"] == 2


def test_state_waiting_for_completion_never_expires(start, redis_url):
    """Hole 7 of #25: open and finalized counts used to expire on a wall-clock TTL while
    a stalled partition held the window back; it was then published empty."""
    pipe = start()
    client = redis.Redis.from_url(redis_url)
    stream(pipe, 10, 11)
    pipe.heartbeat(12 * W + 10_000, partition=0)  # partition 1 stalls
    pipe.commit_as_quix()
    working = [k for k in client.scan_iter(f"{pipe.prefix}src:*")]
    assert working and all(client.ttl(k) == -1 for k in working)
    close_all(pipe, 12)
    window = pipe.store.keys.window(11 * W)
    assert 0 < client.ttl(window) <= 3600


# -- found by review (each was reproduced against the first version of the recount) ------


def test_redis_going_back_again_during_a_recount_is_recounted_from_the_older_point(
    start, redis_url
):
    pipe = start()
    client = redis.Redis.from_url(redis_url)
    fed = stream(pipe, 10, 10)
    pipe.commit_as_quix()
    oldest = snapshot(client, pipe.prefix)
    fed += stream(pipe, 11, 11)
    pipe.commit_as_quix()
    older = snapshot(client, pipe.prefix)
    fed += stream(pipe, 12, 12)
    pipe.commit_as_quix()
    restore(client, pipe.prefix, older)
    fed += stream(pipe, 13, 13)
    for _ in range(4):  # refused, then sought back: Redis goes back further meanwhile
        try:
            pipe.commit()
            break
        except SinkBackpressureError:
            if pipe.rewinds:
                restore(client, pipe.prefix, oldest)
            pipe.read_again()
    pipe.commit_as_quix()
    close_all(pipe, 14)
    counts, complete, _ = published(pipe)
    assert counts == fed and complete == [W * n for n in range(11, 14)]


def test_a_partition_that_comes_back_after_others_counted_it_reads_redis_afresh(start, redis_url):
    """Replica A knew the progress it wrote; B counted on; Redis went back to exactly
    what A knew; the partition came back to A: its fence alone would have passed."""
    a = start()
    client = redis.Redis.from_url(redis_url)
    fed = stream(a, 10, 11)
    a.commit_as_quix()
    older = snapshot(client, a.prefix)
    b = start()
    b._log = a._log  # the same raw topic
    fed += stream(b, 12, 12)
    b.commit_as_quix()
    restore(client, a.prefix, older)
    a._offsets.clear()  # the partitions come back to A: it reads from the committed offsets
    fed += stream(a, 13, 13)
    a.commit_as_quix()
    close_all(a, 14)
    counts, complete, _ = published(a)
    assert counts == fed and complete == [W * n for n in range(11, 14)]


def test_retention_overtaking_a_running_replica_makes_the_windows_partial(start):
    pipe = start()
    fed = stream(pipe, 10, 10)
    pipe.commit_as_quix()
    log = pipe._log[0]
    for i in range(2):  # two window-11 events, deleted before the replica reads them
        hints = [("wp-kind", b"event"), ("wp-event-id", b"x"), ("wp-facts", b"eh")]
        log.append((b"{}", EN, 11 * W + 100 + i, hints))
        fed[11 * W, EN.decode()] += 1
    pipe.group.low[0] = pipe._offsets[0] = len(log)  # the consumer resets to the log start
    uncountable = metric("wikipulse_processor_uncountable_offsets_total")
    fed += stream(pipe, 11, 11)
    close_all(pipe, 12)
    _, complete, partial = published(pipe)
    assert 11 * W in partial and 11 * W not in complete
    assert metric("wikipulse_processor_uncountable_offsets_total") == uncountable + 2


def test_a_cut_s_partial_mark_covers_deleted_records_up_to_the_grace_newer(start, redis_url):
    """Records reach a partition out of order by up to the grace: a deleted record may be
    newer than the first one kept."""
    pipe = start()
    client = redis.Redis.from_url(redis_url)
    stream(pipe, 10, 10)
    pipe.commit_as_quix()
    older = snapshot(client, pipe.prefix)
    cut = dict(pipe.group.committed)
    pipe.event(EN, "deleted-12", 12 * W + 2_000, 0)
    pipe.event(EN, "kept-11", 11 * W + 29_000, 0)  # 3 s older than the one before it
    pipe.event(DE, "d11", 11 * W + 1_000, 1)
    pipe.event(EN, "e12", 12 * W + 4_000, 0)
    pipe.event(DE, "d12", 12 * W + 4_000, 1)
    pipe.commit_as_quix()
    restore(client, pipe.prefix, older)
    pipe.group.low[0] = cut[0] + 1  # the window-12 record is gone
    stream(pipe, 13, 13)
    close_all(pipe, 14)
    _, complete, partial = published(pipe)
    assert 12 * W in partial and 12 * W not in complete


def test_a_partition_whose_first_records_were_never_counted_marks_its_first_window(start):
    """Its first write held dead letters only: progress, but no clock."""
    a = start()
    for partition in (0, 1):
        a.feed(b"\xff not json", b"junk", 10 * W + 500, None, partition)
    a.commit_as_quix()
    b = start()  # a restart
    b._log = a._log
    stream(b, 10, 11)
    close_all(b, 12)
    _, complete, partial = published(b)
    assert partial == [10 * W] and complete == [11 * W]


def test_dead_letters_are_not_written_again_after_a_recount_committed_part_way(start, redis_url):
    a = start()
    client = redis.Redis.from_url(redis_url)
    stream(a, 10, 10)
    dead_at = a._offsets[0]
    a.feed(b"\xff not json", b"\x00unkeyed", 10 * W + 2_000)
    stream(a, 11, 11)
    a.commit_as_quix()
    for key in client.scan_iter(f"{a.prefix}*"):
        client.delete(key)
    stream(a, 12, 12)
    for _ in range(3):  # refused, then sought back to the log start
        try:
            a.commit()
        except SinkBackpressureError:
            if a.rewinds:
                break
            a.read_again()
    a._checkpoint.clear()
    a.rewinds.clear()
    a._offsets.clear()
    for offset in range(dead_at):  # the recount's first checkpoint ends before the letter
        a._deliver(0, offset, a._log[0][offset])
    a.commit()
    assert a.group.committed[0] == dead_at  # Kafka's offset went back
    b = start()  # the partition moves (or the replica restarts)
    b._log = a._log
    b._checkpoint = {0: dead_at}
    b.read_again()
    b.commit_as_quix()
    letters = [r.value for p in (a, b) for r in p.produced if r.topic == DLQ]
    assert letters == [b"\xff not json"]
