"""The processor's sink turns judged records into the Redis contract.

In-process, with records as Quix hands them to the sink (`add`, then `flush` before the
commit), against a real Redis: what reaches Redis for counts, heartbeats, a raw topic
created anew and an unreachable server.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis
from confluent_kafka import KafkaError, KafkaException
from quixstreams.checkpointing.checkpoint import Checkpoint
from quixstreams.sinks import SinkBackpressureError

import processor.sink
from processor.durability import UnsafeRedis
from processor.records import Verdict
from processor.recount import Continuity
from processor.sink import RedisWindowSink
from tests.support.names import Names
from wikipulse.events import HEARTBEAT_KEY
from wikipulse.settings import RedisSettings
from wikipulse.store.keys import KeyLayout
from wikipulse.store.window_store import WindowStore
from wikipulse.store.writes import Batch, Progress

WINDOW, GRACE = 30_000, 5_000
S0 = 1_767_225_600_000
BEAT = HEARTBEAT_KEY.encode()
EN = b"en.wikipedia.org"


class NoKafka:
    """A consumer group that never committed, on a topic that holds everything."""

    def committed(self, partition: int) -> int | None:
        return None

    def low_watermark(self, partition: int) -> int:
        return 0

    def rewind(self, partition: int, offset: int) -> None:
        raise AssertionError("nothing to rewind: Kafka committed nothing")


def sink_for(url: str, prefix: str, partitions: int = 2, source: str = "") -> RedisWindowSink:
    sink = RedisWindowSink(
        RedisSettings(redis_url=url, redis_key_prefix=prefix),
        window_ms=WINDOW,
        grace_ms=GRACE,
        ttl_seconds=3600,
        partitions=partitions,
        seeker=NoKafka(),
        source=source,
        backpressure_seconds=0.1,
    )
    sink.setup()
    return sink


def add(sink: RedisWindowSink, partition: int, offset: int, key: bytes, at: int) -> None:
    verdict = Verdict.HEARTBEAT if key == BEAT else Verdict.EVENT
    facts = b"" if key == BEAT else b"eh"
    sink.add((verdict, at, b"", "", facts), key, at, [], "raw", partition, offset)


def test_counts_land_per_wiki_and_heartbeats_only_move_the_closed_mark(redis_url):
    prefix = Names.fresh().prefix
    store = WindowStore(redis.Redis.from_url(redis_url), KeyLayout(prefix))
    sink = sink_for(redis_url, prefix)
    add(sink, 0, 0, BEAT, S0 - WINDOW)  # the stream's first (partial) window
    for offset in range(1, 4):
        add(sink, 0, offset, EN, S0 + offset)
    add(sink, 0, 4, BEAT, S0 + 2 * WINDOW + GRACE)
    sink.flush()
    closed = store.client.hgetall(store.keys.source("").closed)
    assert closed == {b"0": str(S0 + 2 * WINDOW).encode()}
    assert store.progress(0) == Progress(4, S0 + 2 * WINDOW + GRACE)
    assert store.latest() is None  # partition 1 has not finalized yet
    add(sink, 1, 0, BEAT, S0 - WINDOW)
    add(sink, 1, 1, BEAT, S0 + WINDOW + GRACE)
    sink.flush()
    board = store.leaderboard(S0, 10)
    assert board is not None and board.rows == [("en.wikipedia.org", 3)]
    assert store.history("\x00heartbeat", 1) == [(S0, 0)]  # never a member
    assert store.recorded() == (WINDOW, 2)


def test_a_raw_topic_created_anew_is_counted_apart_from_the_old_one(redis_url):
    """Offsets restart at 0 in a re-created topic; its new id keeps its state apart (it
    used to be added to the old topic's open windows: 5 + 1 = 6)."""
    prefix = Names.fresh().prefix
    store = WindowStore(redis.Redis.from_url(redis_url), KeyLayout(prefix))
    old = sink_for(redis_url, prefix, partitions=1, source="old-topic-id")
    for offset in range(5):
        add(old, 0, offset, EN, S0 + offset)
    old.flush()
    new = sink_for(redis_url, prefix, partitions=1, source="new-topic-id")
    add(new, 0, 0, EN, S0 + 10)
    add(new, 0, 1, BEAT, S0 + WINDOW + GRACE)
    new.flush()
    assert store.partial_starts(10) == [S0]  # the new topic's first window
    assert store.counts([S0]) == {S0: {"en.wikipedia.org": 1}}


def test_an_unreachable_redis_pauses_the_partition_instead_of_losing_the_batch(redis_url):
    sink = sink_for("redis://127.0.0.1:1/0", Names.fresh().prefix)
    add(sink, 0, 0, EN, S0)
    with pytest.raises(SinkBackpressureError):
        sink.flush()


def test_records_taken_again_after_quix_went_back_replace_the_ones_taken_before(redis_url):
    """A partition lost and assigned again without a commit is read again from the
    last commit, while the records taken before are still waiting for the flush."""
    prefix = Names.fresh().prefix
    store = WindowStore(redis.Redis.from_url(redis_url), KeyLayout(prefix))
    sink = sink_for(redis_url, prefix, partitions=1)
    add(sink, 0, 0, BEAT, S0 - WINDOW)
    sink.flush()
    for offset in range(5, 10):  # taken, never flushed
        add(sink, 0, offset, EN, S0 + 20_000 + offset)
    for offset in range(1, 10):  # read again from the last commit, at offset 1
        add(sink, 0, offset, EN, S0 + offset * 2_000)
    add(sink, 0, 10, BEAT, S0 + WINDOW + GRACE)
    sink.flush()
    board = store.leaderboard(S0, 10)
    assert board is not None and board.rows == [("en.wikipedia.org", 9)]


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-lru", "volatile-ttl"])
def test_a_redis_that_may_evict_keys_is_refused(redis_url, policy):
    """An evicted open or final set would publish a window short, as complete; an
    evicted bucket (history carries TTLs) would roll up short: only noeviction is safe."""
    client = redis.Redis.from_url(redis_url)
    before = client.config_get("maxmemory-policy")["maxmemory-policy"]
    client.config_set("maxmemory-policy", policy)
    try:
        with pytest.raises(UnsafeRedis, match=policy):
            sink_for(redis_url, Names.fresh().prefix)
    finally:
        client.config_set("maxmemory-policy", before)
    sink_for(redis_url, Names.fresh().prefix)  # noeviction: fine


class KafkaBetweenLeaders(NoKafka):
    """The raw topic's partition is moving to another leader: Kafka cannot answer yet."""

    def low_watermark(self, partition: int) -> int:
        raise KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))


def test_kafka_unable_to_say_where_counting_goes_on_pauses_instead_of_failing(redis_url):
    """Seen on the cluster (a rolling restart, two brokers lost): the watermark query
    failed with "Not leader for partition" or timed out, and the processor started over."""
    prefix = Names.fresh().prefix
    sink = sink_for(redis_url, prefix)
    sink.continuity = Continuity(KafkaBetweenLeaders(), "")
    add(sink, 0, 0, EN, S0)
    with pytest.raises(SinkBackpressureError):
        sink.flush()
    store = WindowStore(redis.Redis.from_url(redis_url), KeyLayout(prefix))
    assert store.progress(0) == Progress()  # nothing written: the checkpoint comes again


class CoordinatorMoving(NoKafka):
    """Kafka's group committed offset 7; `committed` blocks while ``answering`` is clear
    (the group coordinator moving), as a revoke-time flush may find it."""

    def __init__(self) -> None:
        self.answering = threading.Event()
        self.answering.set()
        self.rewinds: list[tuple[int, int]] = []

    def committed(self, partition: int) -> int | None:
        self.answering.wait()
        return 7

    def rewind(self, partition: int, offset: int) -> None:
        self.rewinds.append((partition, offset))


def test_a_flush_left_behind_by_a_revoke_cannot_make_the_next_checkpoint_skip_records(redis_url):
    """Found in review: Quix flushes the sink on a revoke in a thread it joins for a
    bounded time, and leaves it running when the time is up. Here that flush waits on
    Kafka, the partition is revoked and assigned again (the sink forgets it), and the
    flush then goes on: what it learns then must not count for the partition as it is
    now, or the next checkpoint skips offsets 4 to 6, which Redis lost (a failover to
    a replica that lacked them), and publishes the window complete but short."""
    prefix = Names.fresh().prefix
    kafka = CoordinatorMoving()
    sink = sink_for(redis_url, prefix, partitions=1)
    sink.continuity = Continuity(kafka, "")
    store = WindowStore(redis.Redis.from_url(redis_url), KeyLayout(prefix))
    # Redis holds offsets 0 to 3 (four events of window S0); Kafka's group committed 7:
    # the primary that counted 4 to 6 was lost, and the promoted replica lacked them
    store.write(
        Batch(0, 0, {S0: {"en.wikipedia.org": 4}}, Progress(), Progress(3, S0 + 3)),
        partitions=1,
        window_ms=WINDOW,
        ttl_seconds=3600,
    )
    add(sink, 0, 7, EN, S0 + 7)
    add(sink, 0, 8, EN, S0 + 8)
    kafka.answering.clear()
    flushed_in_time = Checkpoint._flush_sink_bounded(None, sink, 0.3)
    assert not flushed_in_time  # Quix gave up on it: the thread goes on by itself
    sink.forget([0])  # revoked
    sink.forget([0])  # and assigned again
    kafka.answering.set()
    time.sleep(0.5)  # the flush left behind finishes

    # the partition starts again from Kafka's committed offset, 7
    for offset in (7, 8):
        add(sink, 0, offset, EN, S0 + offset)
    add(sink, 0, 9, EN, S0 + WINDOW + GRACE)  # closes S0
    with pytest.raises(SinkBackpressureError):
        sink.flush()  # Redis lacks 4 to 6: sought back to 4 and counted again
    assert kafka.rewinds[-1] == (0, 4)
    for offset in range(4, 10):
        add(sink, 0, offset, EN, S0 + offset if offset < 9 else S0 + WINDOW + GRACE)
    sink.flush()
    assert store.is_complete(S0)
    assert store.counts([S0]) == {S0: {"en.wikipedia.org": 9}}


class RetentionCut(NoKafka):
    """Kafka's group committed offset 3, and retention deleted offsets 3 and 4 before
    they were counted: the log starts at 5."""

    def committed(self, partition: int) -> int | None:
        return 3

    def low_watermark(self, partition: int) -> int:
        return 5


def test_a_flush_left_behind_by_a_revoke_keeps_the_partial_mark_it_found(redis_url, monkeypatch):
    """Found in review: the flush Quix leaves behind found the retention cut (its window
    must be published partial), then the partition was revoked and assigned again
    before it wrote. Its write must still carry the partial mark, or the next
    assignment, which no longer sees a cut, publishes the window complete but short."""
    prefix = Names.fresh().prefix
    sink = sink_for(redis_url, prefix, partitions=1)
    sink.continuity = Continuity(RetentionCut(), "")
    sink.resend_from = sink.continuity.resend_from
    store = WindowStore(redis.Redis.from_url(redis_url), KeyLayout(prefix))
    store.write(  # Redis counted offsets 0 to 2: three events of S0
        Batch(0, 0, {S0: {"en.wikipedia.org": 3}}, Progress(), Progress(2, S0 + 2)),
        partitions=1,
        window_ms=WINDOW,
        ttl_seconds=3600,
    )
    resume, counting = threading.Event(), threading.Event()
    real_tally = processor.sink.tally

    def tally_after_a_pause(*args: Any, **kwargs: Any) -> Any:
        counting.set()  # the cut found; the thread is held here past Quix's bound
        resume.wait()
        return real_tally(*args, **kwargs)

    monkeypatch.setattr(processor.sink, "tally", tally_after_a_pause)
    add(sink, 0, 5, EN, S0 + 5)
    add(sink, 0, 6, EN, S0 + 6)
    assert not Checkpoint._flush_sink_bounded(None, sink, 0.3)
    assert counting.is_set()
    sink.forget([0])  # revoked
    sink.forget([0])  # and assigned again
    monkeypatch.setattr(processor.sink, "tally", real_tally)
    resume.set()
    time.sleep(0.5)  # the flush left behind finishes

    add(sink, 0, 5, EN, S0 + 5)  # the log starts at 5: read again from there
    add(sink, 0, 6, EN, S0 + 6)
    add(sink, 0, 7, BEAT, S0 + WINDOW + GRACE)  # closes S0
    try:
        sink.flush()
    except SinkBackpressureError:  # read again once more: the same records
        add(sink, 0, 5, EN, S0 + 5)
        add(sink, 0, 6, EN, S0 + 6)
        add(sink, 0, 7, BEAT, S0 + WINDOW + GRACE)
        sink.flush()
    assert not store.is_complete(S0)  # offsets 3 and 4 were never counted
    assert store.partial_starts(10) == [S0]


def test_a_redis_user_that_may_not_read_info_is_refused_with_what_it_needs(redis_url):
    """Found in review: a managed Redis's ACL without INFO made the processor fail with
    a bare permission error, again at each restart; it is a configuration problem, said
    once, as an evicting Redis is."""
    admin = redis.Redis.from_url(redis_url)
    user = Names.fresh().prefix.strip(":").replace(":", "-")
    admin.acl_setuser(
        user, enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-info"]
    )
    try:
        url = redis_url.replace("redis://", f"redis://{user}:pw@")
        with pytest.raises(UnsafeRedis, match="may not run"):
            sink_for(url, Names.fresh().prefix)
    finally:
        admin.acl_deluser(user)
