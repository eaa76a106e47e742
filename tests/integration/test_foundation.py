"""The servers under every integration test are real: Kafka round-trips, Redis sorted sets."""

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.services import LOCAL_SH, LocalServers
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


def test_services_up_then_down_leaves_no_process_and_no_port(tmp_path):
    servers = LocalServers(tmp_path / "svc")
    servers.start()
    pids = [
        int((tmp_path / "svc" / name).read_text())
        for name in ("kafka/kafka.pid", "redis/redis.pid")
    ]
    assert all(_alive(pid) for pid in pids)
    servers.stop()
    assert not any(_alive(pid) for pid in pids)
    for port in (servers.kafka_port, servers.controller_port, servers.redis_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"


def test_bad_setup_gets_one_clear_line_naming_the_missing_piece(tmp_path):
    servers = LocalServers(tmp_path / "svc")
    bin_without_java = tmp_path / "bin"
    bin_without_java.mkdir()
    for tool in Path("/usr/bin").iterdir():
        if tool.name != "java":
            (bin_without_java / tool.name).symlink_to(tool)
    no_java = {**servers.env, "PATH": str(bin_without_java)}
    result = subprocess.run(
        ["/bin/bash", str(LOCAL_SH), "up"], env=no_java, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "services: Java 17+ is required for Kafka: install a JDK"
        " (e.g. apt-get install -y openjdk-17-jre-headless)"
    ]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", servers.kafka_port))
        taken.listen()
        result = subprocess.run(
            ["bash", str(LOCAL_SH), "up"], env=servers.env, capture_output=True, text=True
        )
    assert result.returncode != 0
    assert f"port {servers.kafka_port} is taken" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie is gone


def test_an_unusable_kafka_stops_a_service_with_one_line_and_no_secret(tmp_path):
    """Wrong credentials: the service says so in one line and never prints the password."""
    env = {
        **os.environ,
        "KAFKA_BROKER_ADDRESS": "127.0.0.1:1",
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": "alice",
        "KAFKA_SASL_PASSWORD": "s3cr3t-kafka",
        "REDIS_URL": "redis://:s3cr3t-redis@127.0.0.1:1/0",
        "STATE_DIR": str(tmp_path / "state"),
        "SSE_URL": "http://127.0.0.1:1/",
    }
    for module in ("producer", "processor"):
        result = subprocess.run(
            [sys.executable, "-m", module],
            env={**env, "KAFKA_STARTUP_TIMEOUT_SECONDS": "3"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode != 0, module
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
        assert result.stderr.strip().splitlines()[-1].startswith(f"wikipulse-{module}: Kafka at")
        assert "s3cr3t" not in result.stdout + result.stderr
