"""Readers see only complete windows: one lagging partition holds back the index."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

from confluent_kafka import Producer

from devtools.observe import indexed_windows, wait_for, window_counts
from tests.support.pipeline import Pipeline
from wikipulse.events import PARTITIONER, heartbeat_record
from wikipulse.kafka import ensure_topic, topic_id
from wikipulse.settings import KafkaSettings
from wikipulse.store.keys import KeyLayout

WINDOW_MS = 3000
# Recent event times: the broker deletes records older than its retention (7 days)
T0 = (int(time.time() * 1000) - 600_000) // WINDOW_MS * WINDOW_MS


def event(server: str, ms: int) -> bytes:
    dt = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return json.dumps(
        {"meta": {"id": str(uuid.uuid4()), "dt": dt.replace("+00:00", "Z")}, "server_name": server}
    ).encode()


def send(producer: Producer, topic: str, partition: int, server: str, times: list[int]) -> None:
    """Records without the producer's hints: the processor judges them itself."""
    for ms in times:
        producer.produce(topic, event(server, ms), server.encode(), partition=partition)


def heartbeat(producer: Producer, topic: str, partition: int, ms: int) -> None:
    producer.produce(topic, **heartbeat_record(partition, ms))


def test_a_window_is_indexed_only_once_every_partition_has_finalized_it(
    services, names, tmp_path, redis_client
):
    kafka = KafkaSettings(kafka_broker_address=services.kafka)
    ensure_topic(kafka, names.topic, 6)
    keys = KeyLayout(names.prefix).source(topic_id(kafka, names.topic))
    pipeline = Pipeline(services, names, tmp_path)
    producer = Producer(
        {
            "bootstrap.servers": services.kafka,
            "enable.idempotence": True,
            "partitioner": PARTITIONER,
        }
    )
    w0, w1, w2 = T0, T0 + WINDOW_MS, T0 + 2 * WINDOW_MS
    expected = {w0: Counter(), w1: Counter()}
    for partition in (0, 1, 2, 4, 5):
        # the stream began a window earlier: its first window, partial, is not w0
        heartbeat(producer, names.topic, partition, w0 - WINDOW_MS)
        server = f"p{partition}.wikipedia.org"
        times = [w0 + 100 * i for i in range(partition + 1)] + [w1 + 500, w1 + 600]
        send(producer, names.topic, partition, server, times)
        expected[w0][server] = partition + 1
        expected[w1][server] = 2
        heartbeat(producer, names.topic, partition, w2 + 2 * WINDOW_MS)  # closes w0 and w1
    producer.flush(30)
    try:
        pipeline.processor()
        closed = lambda: redis_client.hgetall(keys.closed)  # noqa: E731
        wait_for(
            lambda: len(closed()) == 5 and all(int(v) >= w2 for v in closed().values()),
            90,
            lambda: f"five partitions to finalize w0 and w1, closed={closed()}\n{pipeline.logs()}",
        )
        assert indexed_windows(redis_client, names.prefix) == []  # partition 3 lags
        pending = redis_client.zrange(keys.pending, 0, -1)
        assert [int(s) for s in pending] == [w0, w1]

        heartbeat(producer, names.topic, 3, w0 - WINDOW_MS)
        send(producer, names.topic, 3, "p3.wikipedia.org", [w0 + 1, w0 + 2, w0 + 3, w1 + 4])
        expected[w0]["p3.wikipedia.org"] = 3
        expected[w1]["p3.wikipedia.org"] = 1
        heartbeat(producer, names.topic, 3, w2 + 2 * WINDOW_MS)
        producer.flush(30)
        wait_for(
            lambda: indexed_windows(redis_client, names.prefix) == [w0, w1],
            60,
            lambda: f"w0 and w1 in the index\n{pipeline.logs()}",
        )
        for window, counts in expected.items():
            assert window_counts(redis_client, names.prefix, window) == counts
        assert redis_client.zcard(keys.pending) == 0
    finally:
        pipeline.stop_all()
