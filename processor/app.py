"""Assembling the Quix Streams application from the settings."""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import TopicPartition
from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models import TopicConfig
from quixstreams.models.topics.exceptions import TopicNotFoundError
from quixstreams.processing import ProcessingContext

from processor.pipeline import wire
from processor.records import FutureSkew
from processor.settings import ProcessorSettings
from processor.sink import RedisWindowSink
from wikipulse.kafka import (
    MAX_MESSAGE_BYTES,
    describe_cluster,
    ensure_topic,
    new_topic_config,
    report_protection,
    topic_id,
)
from wikipulse.store.window_store import WindowStore

log = logging.getLogger(__name__)


def build_app(settings: ProcessorSettings) -> CountingApplication:
    """The processor as a ready-to-run Quix `Application`.

    The raw topic is created here too (whichever service starts first creates it), and
    a new consumer group starts from the earliest retained record, so nothing produced
    before the processor joined is skipped.

    Replicas starting together race to create the dead-letter topic.
    Quix looks a topic up right after its creation request; when another replica's
    request won a moment earlier, the broker may not list the topic yet and Quix raises
    `TopicNotFoundError`. That is a start-up race, not a fault: the build is retried
    (topic creation is idempotent) until ``KAFKA_STARTUP_TIMEOUT_SECONDS``.
    """
    deadline = time.monotonic() + settings.kafka_startup_timeout_seconds
    while True:
        try:
            return _build_app(settings)
        except TopicNotFoundError as exc:
            if time.monotonic() > deadline:
                raise
            log.info("%s yet (another replica is creating it); retrying", exc)
            time.sleep(0.5)


def _build_app(settings: ProcessorSettings) -> CountingApplication:
    FutureSkew.seconds = settings.max_future_skew_seconds  # what `classify` believes
    partitions = ensure_topic(settings, settings.raw_topic, settings.raw_topic_partitions)
    cluster = describe_cluster(settings)
    log.info("joined Kafka cluster %s", cluster)
    # ours first: `ensure_topic` waits until the broker lists it, which Quix does not
    ensure_topic(settings, settings.dlq_topic, partitions)
    report_protection("wikipulse-processor", settings, [settings.raw_topic, settings.dlq_topic])
    session_timeout = settings.session_timeout_for(len(cluster.brokers))
    topic_config = TopicConfig(
        num_partitions=partitions,
        replication_factor=settings.raw_topic_replication_factor,
        extra_config=new_topic_config(settings),
    )
    source = topic_id(settings, settings.raw_topic)
    _check_recorded(settings, source, partitions)
    app = CountingApplication(
        broker_address=ConnectionConfig.from_librdkafka_dict(settings.client_config()),
        consumer_group=settings.consumer_group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        commit_interval=settings.commit_interval_seconds,
        state_dir=settings.state_dir,
        loglevel=None,  # our logging set-up applies
        producer_extra_config={
            "message.max.bytes": MAX_MESSAGE_BYTES,
            # librdkafka's 60 s: a replica frozen between sending a checkpoint's offsets
            # and ending its transaction left them unstable, and its partitions
            # uncounted, for up to 70 s (tests/integration/test_frozen_commit.py)
            "transaction.timeout.ms": int(settings.transaction_timeout_seconds * 1000),
        },
        # Kafka's 45 s default leaves the partitions of a crashed replica unserved for
        # that long; heartbeats come from librdkafka's own thread, so a busy Python
        # loop does not make a shorter timeout fire.
        consumer_extra_config={
            "session.timeout.ms": int(session_timeout * 1000),
            "heartbeat.interval.ms": int(session_timeout * 1000 / 5),
        },
    )
    # raw bytes both ways: records are judged by `classify`, never by a deserializer that
    # could fail on hostile input, and dead letters keep the exact bytes received
    raw, dlq = (
        app.topic(
            name,
            key_deserializer="bytes",
            value_deserializer="bytes",
            key_serializer="bytes",
            value_serializer="bytes",
            config=topic_config,
        )
        for name in (settings.raw_topic, settings.dlq_topic)
    )
    sdf = app.dataframe(raw)
    sink = RedisWindowSink(
        settings,
        window_ms=settings.window_ms,
        grace_ms=settings.grace_ms,
        ttl_seconds=settings.window_ttl_seconds,
        partitions=partitions,
        seeker=QuixSeeker(sdf.processing_context, settings.raw_topic),
        source=source,
        rollups=settings.rollups,
        wait_replicas=settings.redis_wait_replicas,
        wait_timeout_seconds=settings.redis_wait_timeout_seconds,
    )
    wire(sdf, dlq_topic=dlq if settings.write_dead_letters else None, sink=sink)
    app.count_with(sink)
    log.info(
        "counting %s (id %s, %d partitions) in %d s windows (grace %d s) into %s as group %s "
        "(session timeout %g s)",
        settings.raw_topic,
        source,
        partitions,
        settings.window_seconds,
        settings.grace_seconds,
        settings.redis_described,
        settings.consumer_group,
        session_timeout,
    )
    return app


class RecordedMismatch(Exception):
    """The raw topic's partition count differs from the one its counts were made with."""


def _check_recorded(settings: ProcessorSettings, source: str, partitions: int) -> None:
    """Refuse to count a raw topic whose partition count changed under its counts: a
    window is complete when every partition closed past it, so the new partitions would
    never have, and the old ones' windows would wait for them. A re-created topic (a new
    id) starts afresh."""
    store = WindowStore.connect(settings)
    try:
        recorded = store.recorded_source()
        found = store.recorded()
        store_window = found[0] if found else None
    except Exception as exc:  # Redis not up yet: the sink backs off until it is
        log.warning("could not read what the processor recorded in Redis: %s", exc)
        return
    finally:
        store.close()
    recorded_window, deployment = store_window, settings.redis_key_prefix
    if recorded_window is not None and recorded_window != settings.window_ms:
        raise RecordedMismatch(
            f"the windows in Redis ({deployment!r}) are {recorded_window} ms "
            f"long, WINDOW_SECONDS asks for {settings.window_ms} ms: one index would mix "
            "both; count into a new prefix (wikipulse rebuild --prefix NEW --window-seconds N)"
        )
    if recorded is None:
        return
    old_source, old_partitions = recorded
    if old_source == source and old_partitions != partitions:
        deployment = settings.redis_key_prefix
        raise RecordedMismatch(
            f"raw topic {settings.raw_topic} (id {source}) has {partitions} partitions, but "
            f"its counts in Redis ({deployment!r}) were made with {old_partitions}; "
            "partitions must not be added to a live raw topic (docs/operations.md)"
        )
    if old_source != source and old_source:
        log.warning(
            "raw topic %s was created anew (id %s, was %s): counting it afresh",
            settings.raw_topic,
            source,
            old_source,
        )


class QuixSeeker:
    """The sink's view of the raw topic's consumer (`processor.recount.Seeker`).

    `rewind` relies on one Quix Streams internal: the checkpoint's first offset per
    partition, where Quix seeks back to after a sink back-pressure
    (``Checkpoint._starting_tp_offsets``, quixstreams 3.28); tests/contract holds it.
    """

    def __init__(self, context: ProcessingContext, topic: str) -> None:
        self._context = context
        self._topic = topic

    def committed(self, partition: int) -> int | None:
        [found] = self._context.consumer.committed(
            [TopicPartition(self._topic, partition)], timeout=30
        )
        return found.offset if found.offset >= 0 else None

    def low_watermark(self, partition: int) -> int:
        low, _ = self._context.consumer.get_watermark_offsets(
            TopicPartition(self._topic, partition), timeout=30
        )
        return int(low)

    def rewind(self, partition: int, offset: int) -> None:
        starts: dict[tuple[str, int], int] = self._context.checkpoint._starting_tp_offsets
        starts[(self._topic, partition)] = offset


class CountingApplication(Application):
    """Quix Streams' `Application`, with the rebalance paths made safe.

    *A lost assignment commits nothing of the lost partitions.* The open checkpoint's
    transaction carries the consumer group's generation, so the broker refuses its
    commit once the partitions went to another replica (KIP-447), and the Redis writes
    of the lost partitions are fenced by offset. Aborting the transaction here instead,
    inside the rebalance callback, once hung a processor whose broker was just coming
    back (the `kafka-outage` fault scenario); what this replica knew of the partitions
    is forgotten, so it reads their progress afresh when they come back.

    *An assignment is never left paused.* A sink back-pressure pauses every partition
    until Quix resumes them; a rebalance in between clears Quix's list of what to
    resume, and librdkafka keeps a partition paused by the application across the
    revoke and the new assign. The partitions then stayed paused for good: seen with two
    replicas starting while Redis was down (the `redis-sigkill` fault scenario).

    *The sink hears of every partition that moved* (`count_with`). Quix Streams 3.28
    tells a sink nothing of a rebalance: it flushes the sinks of its sink manager before
    a commit (`Checkpoint.commit`) and calls ``on_paused`` after a back-pressure, no
    more. So these callbacks, which Quix does call, tell the window sink themselves;
    the sink is held here rather than looked up among the sink manager's (where
    `processor.pipeline.wire` registers it, for the flush).
    """

    _sink: RedisWindowSink | None = None

    def count_with(self, sink: RedisWindowSink) -> None:
        """Tell ``sink`` of every partition assigned, revoked or lost from now on."""
        self._sink = sink

    def _on_assign(self, consumer: Any, topic_partitions: list[TopicPartition]) -> None:
        super()._on_assign(consumer, topic_partitions)
        if topic_partitions:
            self._consumer.resume(topic_partitions)
            self._forget(topic_partitions)

    def _on_revoke(self, consumer: Any, topic_partitions: list[TopicPartition]) -> None:
        super()._on_revoke(consumer, topic_partitions)
        self._forget(topic_partitions)

    def _forget(self, topic_partitions: list[TopicPartition]) -> None:
        """What the sink knew of these partitions may be stale: others counted them."""
        if self._sink is not None:
            self._sink.forget([tp.partition for tp in topic_partitions])

    def _on_lost(self, consumer: Any, topic_partitions: list[TopicPartition]) -> None:
        super()._on_lost(consumer, topic_partitions)
        log.warning("lost %d partitions: what it knew of them is forgotten", len(topic_partitions))
        self._forget(topic_partitions)
