"""The servers under every integration test are real: Kafka round-trips, Redis sorted sets."""

import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from wikipulse.kafka import KafkaSettings, ensure_topic


def test_kafka_creates_a_multi_partition_topic_and_round_trips_records(services, names):
    admin = AdminClient({"bootstrap.servers": services.kafka})
    cluster = admin.describe_cluster(request_timeout=10).result()
    assert cluster.cluster_id and len(cluster.nodes) == 1

    settings = KafkaSettings(kafka_broker_address=services.kafka)
    assert ensure_topic(settings, names.topic, 6) == 6
    assert ensure_topic(settings, names.topic, 6) == 6  # idempotent: the second caller waits
    assert len(admin.list_topics(names.topic).topics[names.topic].partitions) == 6

    producer = Producer({"bootstrap.servers": services.kafka, "enable.idempotence": True})
    sent = {f"key{i}".encode(): uuid.uuid4().hex.encode() for i in range(20)}
    for key, value in sent.items():
        producer.produce(names.topic, key=key, value=value, headers=[("h", b"1")])
    assert producer.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": services.kafka, "group.id": names.group})
    consumer.assign([TopicPartition(names.topic, p, 0) for p in range(6)])
    received = {}
    while len(received) < len(sent):
        msg = consumer.poll(10)
        assert msg is not None, f"only {len(received)} of {len(sent)} records came back"
        assert msg.error() is None
        received[msg.key()] = msg.value()
        assert msg.headers() == [("h", b"1")]
    consumer.close()
    assert received == sent


def test_redis_answers_and_keeps_a_sorted_set_leaderboard(redis_client, names):
    key = f"{names.prefix}window:0"
    assert redis_client.ping()
    redis_client.zadd(key, {"en.wikipedia.org": 12, "www.wikidata.org": 30, "de.wikipedia.org": 5})
    board = redis_client.zrange(key, 0, -1, desc=True, withscores=True)
    assert board == [
        (b"www.wikidata.org", 30.0),
        (b"en.wikipedia.org", 12.0),
        (b"de.wikipedia.org", 5.0),
    ]
