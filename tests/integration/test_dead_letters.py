"""A record no dead letter can hold whole still gets one, and its partition goes on.

Another tool may write the raw topic a record near Kafka's size limit (compressed, the
broker takes it). Its dead letter adds a reason header; written whole, it would exceed
the limit, every attempt would fail, and the partition would stop for good (hole 6 of
issue #25). It is dead-lettered cut to a bounded size, with the reason saying so.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from confluent_kafka import Producer

from devtools.observe import read_topic, wait_for
from tests.support.pipeline import Pipeline
from wikipulse.events import Header, heartbeat_record
from wikipulse.kafka import MAX_MESSAGE_BYTES, ensure_topic
from wikipulse.settings import KafkaSettings
from wikipulse.store.keys import KeyLayout
from wikipulse.store.window_store import WindowStore

WINDOW_MS = 3000
T0 = (int(time.time() * 1000) - 300_000) // WINDOW_MS * WINDOW_MS
PARTITIONS = 2


def event(server: str, ms: int, serial: int) -> bytes:
    dt = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    meta = {"id": f"big-{serial}", "dt": dt.replace("+00:00", "Z")}
    return json.dumps({"meta": meta, "server_name": server}).encode()


def test_a_record_at_the_size_limit_is_dead_lettered_cut_and_counting_goes_on(
    services, names, tmp_path, redis_client
):
    ensure_topic(KafkaSettings(kafka_broker_address=services.kafka), names.topic, PARTITIONS)
    writer = Producer(
        {
            "bootstrap.servers": services.kafka,
            "enable.idempotence": True,
            "compression.type": "lz4",  # the broker's limit applies to the compressed batch
            "message.max.bytes": 2 * MAX_MESSAGE_BYTES,
        }
    )
    huge = b"x" * MAX_MESSAGE_BYTES  # not JSON: invalid, and as large as a record may be
    for partition in range(PARTITIONS):
        writer.produce(names.topic, **heartbeat_record(partition, T0 - WINDOW_MS))
    writer.produce(names.topic, huge, b"\x00unkeyed", partition=0)
    for serial in range(3):
        wiki = "en.wikipedia.org"
        writer.produce(names.topic, event(wiki, T0 + serial, serial), wiki.encode(), partition=0)
    for partition in range(PARTITIONS):
        writer.produce(names.topic, **heartbeat_record(partition, T0 + 3 * WINDOW_MS))
    assert writer.flush(30) == 0
    pipeline = Pipeline(services, names, tmp_path, overrides={"WINDOW_SECONDS": "3"})
    store = WindowStore(redis_client, KeyLayout(names.prefix))
    try:
        pipeline.processor()
        wait_for(lambda: store.is_complete(T0), 90, lambda: f"window {T0}\n{pipeline.logs()}")
        assert store.counts([T0]) == {T0: {"en.wikipedia.org": 3}}
        [letter] = wait_for(
            lambda: read_topic(services.kafka, f"{names.topic}.dlq"), 30, "the dead letter"
        )
        headers = dict(letter.headers())
        assert letter.value() == huge[: len(letter.value())] and len(letter.value()) < 100_000
        assert headers["wp-truncated"] == str(len(huge)).encode()
        assert b"truncated" in headers[Header.REASON]
    finally:
        pipeline.stop_all()
