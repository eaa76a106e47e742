"""The foundation: topic creation shared by the services, the local servers' recipe, and
start-up errors a user can act on."""

import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from confluent_kafka.admin import AdminClient

from devtools.servers import LOCAL_SH, LocalServers
from wikipulse.kafka import ensure_topic
from wikipulse.settings import KafkaSettings


def test_whichever_service_starts_first_creates_the_topic_once_with_its_partitions(services, names):
    """Both services call ensure_topic at start-up, in any order and at the same time."""
    admin = AdminClient({"bootstrap.servers": services.kafka})
    assert len(admin.describe_cluster(request_timeout=10).result().nodes) == 1  # a real broker
    settings = KafkaSettings(kafka_broker_address=services.kafka)
    with ThreadPoolExecutor(3) as pool:
        counts = list(pool.map(lambda _: ensure_topic(settings, names.topic, 6), range(3)))
    assert counts == [6, 6, 6]
    # a caller that lost the race returns only once the broker lists the topic, with leaders
    topic = admin.list_topics(names.topic, timeout=10).topics[names.topic]
    assert len(topic.partitions) == 6 and all(p.leader >= 0 for p in topic.partitions.values())
    assert ensure_topic(settings, names.topic, 12) == 6  # an existing topic is never altered


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
