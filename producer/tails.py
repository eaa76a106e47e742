"""Reading the raw topic's partition tails: where the producer left off.

On start, and after a failed delivery, the producer reads the newest records of each
partition and takes from their headers the resume point (`producer.resume`, the pure
protocol) and the ids of the events written (`producer.copies`).
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from producer.resume import Bookkeeping, Recovered, read_bookkeeping, resume_point
from wikipulse.settings import KafkaSettings

log = logging.getLogger(__name__)


def recover(settings: KafkaSettings, topic: str, depth: int) -> Recovered:
    """The resume point recorded in the newest ``depth`` records of each partition, and
    the ids of the events among them.

    ``depth`` must exceed the producer's in-flight limit (plus heartbeats written in
    between), so the tail reaches back to the acknowledged point, and so every event
    that can be read again after it is among the ids.
    """
    consumer = Consumer(
        {
            **settings.client_config(),
            "group.id": "wikipulse-producer-resume",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "log_level": 3,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=15)
        partitions = sorted(metadata.topics[topic].partitions) if topic in metadata.topics else []
        tails: list[Bookkeeping] = []
        for partition in partitions:
            wait = settings.kafka_startup_timeout_seconds
            tails.extend(_read_tail(consumer, topic, partition, depth, wait))
    finally:
        consumer.close()
    return resume_point(tails)


def _watermarks(consumer: Consumer, tp: TopicPartition, wait_seconds: float) -> tuple[int, int]:
    """Low and high offsets; retried while a new topic's leaders settle."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=15)
            return int(low), int(high)
        except KafkaException:  # e.g. NOT_LEADER_FOR_PARTITION right after creation
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _read_tail(
    consumer: Consumer, topic: str, partition: int, depth: int, wait_seconds: float
) -> list[Bookkeeping]:
    low, high = _watermarks(consumer, TopicPartition(topic, partition), wait_seconds)
    if high <= low:
        return []
    consumer.assign([TopicPartition(topic, partition, max(low, high - depth))])
    tails: list[Bookkeeping] = []
    try:
        while True:
            msg = consumer.poll(5.0)
            if msg is None:
                log.warning("timed out reading the tail of %s[%d]", topic, partition)
                break
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    break
                raise RuntimeError(f"reading {topic}[{partition}]: {msg.error()}")
            tail = read_bookkeeping(msg.headers() or [])
            if tail is not None:
                tails.append(tail)
            if msg.offset() >= high - 1:
                break
    finally:
        consumer.unassign()
    return tails
