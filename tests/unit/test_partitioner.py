"""Every writer of the raw topic puts a key in the partition Java's murmur2 picks, as
Quix Streams' producer does (issue #25, hole 2): a wiki the processor re-keys must land
in the partition the producer's records of it are counted in.

The producer's partition is taken from librdkafka itself, against its in-process mock
cluster (no Kafka server); the expected one is Kafka's Java ``Utils.murmur2``, written
out below and checked against the test vectors of Kafka's own ``UtilsTest``.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import Producer

from producer.publisher import Publisher
from producer.resume import Recovered
from producer.settings import ProducerSettings
from wikipulse.events import PARTITIONER

PARTITIONS = 6
WIKIS = [
    "www.wikidata.org",
    "commons.wikimedia.org",
    "en.wikipedia.org",
    "de.wikipedia.org",
    "fr.wikipedia.org",
    "ja.wikipedia.org",
    "es.wikipedia.org",
]


def java_murmur2(data: bytes) -> int:
    """Kafka's ``org.apache.kafka.common.utils.Utils.murmur2``, as a signed 32-bit int."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    h = (0x9747B28C ^ len(data)) & mask
    whole = len(data) // 4 * 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    rest = data[whole:]
    if len(rest) == 3:
        h ^= rest[2] << 16
    if len(rest) >= 2:
        h ^= rest[1] << 8
    if rest:
        h ^= rest[0]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    """``DefaultPartitioner``/``BuiltInPartitioner`` for a keyed record."""
    return (java_murmur2(key) & 0x7FFFFFFF) % partitions


def test_the_reference_murmur2_matches_kafkas_own_test_vectors():
    assert java_murmur2(b"21") == -973932308
    assert java_murmur2(b"foobar") == -790332482
    assert java_murmur2(b"a-little-bit-long-string") == -985981536
    assert java_murmur2(b"a-little-bit-longer-string") == -1486304829
    assert java_murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971
    assert java_murmur2(b"abc") == 479470107


def partitions_chosen(config: dict[str, Any], keys: list[str]) -> tuple[dict[str, int], int]:
    """The partition librdkafka picks for each key under ``config``, against its mock
    cluster, and the topic's partition count there (the mock's default for a topic
    created on first use)."""
    producer = Producer(
        {**config, "bootstrap.servers": "", "test.mock.num.brokers": 1, "log_level": 2}
    )
    chosen: dict[str, int] = {}

    def delivered(err: Any, msg: Any) -> None:
        assert err is None, err
        chosen[msg.key().decode()] = msg.partition()

    for key in keys:
        producer.produce("raw", b"x", key.encode(), on_delivery=delivered)
    assert producer.flush(10) == 0
    partitions = len(producer.list_topics("raw", timeout=10).topics["raw"].partitions)
    return chosen, partitions


def test_the_producer_config_partitions_a_wiki_as_java_and_quix_do(monkeypatch):
    monkeypatch.setenv("KAFKA_BROKER_ADDRESS", "127.0.0.1:1")
    captured: dict[str, Any] = {}

    class Capture(Producer):
        def __init__(self, config: dict[str, Any]) -> None:
            captured.update(config)
            super().__init__({"bootstrap.servers": "", "test.mock.num.brokers": 1})

    monkeypatch.setattr("producer.publisher.Producer", Capture)
    Publisher(ProducerSettings(), threading.Event(), PARTITIONS, Recovered(None, 1))
    assert captured["partitioner"] == PARTITIONER == "murmur2_random"
    config = {k: v for k, v in captured.items() if k not in ("bootstrap.servers", "log_level")}
    chosen, partitions = partitions_chosen(config, WIKIS)
    assert chosen == {wiki: java_partition(wiki.encode(), partitions) for wiki in WIKIS}


def test_www_wikidata_org_goes_where_java_puts_it_in_six_partitions():
    assert java_partition(b"www.wikidata.org", PARTITIONS) == 1  # CRC32 gave 4 (#25)


@pytest.mark.parametrize("partitioner", ["consistent_random"])
def test_librdkafkas_default_would_disagree_so_the_test_can_tell(partitioner):
    chosen, partitions = partitions_chosen({"partitioner": partitioner}, WIKIS)
    assert chosen != {wiki: java_partition(wiki.encode(), partitions) for wiki in WIKIS}
