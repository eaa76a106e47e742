"""Assembling the Quix Streams application from the settings."""

from __future__ import annotations

import logging
import time

from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models import TopicConfig
from quixstreams.models.topics.exceptions import TopicNotFoundError

from processor.settings import ProcessorSettings
from processor.sink import RedisWindowSink
from processor.windows import count_windows
from wikipulse.kafka import (
    MAX_MESSAGE_BYTES,
    cluster_identity,
    ensure_topic,
    new_topic_config,
    topic_id,
)

log = logging.getLogger(__name__)


def build_app(settings: ProcessorSettings) -> Application:
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


def _build_app(settings: ProcessorSettings) -> Application:
    partitions = ensure_topic(settings, settings.raw_topic, settings.raw_topic_partitions)
    log.info("joined Kafka cluster %s", cluster_identity(settings))
    # ours first: `ensure_topic` waits until the broker lists it, which Quix does not
    ensure_topic(settings, settings.dlq_topic, partitions)
    topic_config = TopicConfig(
        num_partitions=partitions,
        replication_factor=settings.raw_topic_replication_factor,
        extra_config=new_topic_config(settings),
    )
    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(settings.client_config()),
        consumer_group=settings.consumer_group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        commit_interval=settings.commit_interval_seconds,
        state_dir=settings.state_dir,
        loglevel=None,  # our logging set-up applies
        producer_extra_config={"message.max.bytes": MAX_MESSAGE_BYTES},
        # Kafka's 45 s default leaves the partitions of a crashed replica unserved for
        # that long; heartbeats come from librdkafka's own thread, so a busy Python
        # loop does not make a shorter timeout fire.
        consumer_extra_config={
            "session.timeout.ms": int(settings.session_timeout_seconds * 1000),
            "heartbeat.interval.ms": int(settings.session_timeout_seconds * 1000 / 5),
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
    sink = RedisWindowSink(
        redis_url=settings.redis_url,
        key_prefix=settings.redis_key_prefix,
        window_ms=settings.window_ms,
        grace_ms=settings.grace_ms,
        ttl_seconds=settings.window_ttl_seconds,
        partitions=partitions,
        source=topic_id(settings, settings.raw_topic),
    )
    count_windows(app.dataframe(raw), raw_topic=raw, dlq_topic=dlq, sink=sink)
    log.info(
        "counting %s (%d partitions) in %d s windows (grace %d s) into %s as group %s",
        settings.raw_topic,
        partitions,
        settings.window_seconds,
        settings.grace_seconds,
        settings.redis_url_redacted,
        settings.consumer_group,
    )
    return app
