"""Where the integration tests get a real Kafka broker and a real Redis from.

Each service is chosen on its own, in this order:

1. ``env``: ``KAFKA_BROKER_ADDRESS`` / ``REDIS_URL`` are set — use that server;
2. ``docker``: a Docker engine answers — testcontainers with the official
   ``apache/kafka`` image (KRaft) and the ``redis`` image;
3. ``local``: start the servers on free ports in a temporary folder with the same
   recipe as ``make services`` (``services/local.sh``), and stop them afterwards.

Never a mock: every integration test talks to one of these.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
LOCAL_SH = ROOT / "services" / "local.sh"
KAFKA_IMAGE = "apache/kafka:4.1.1"
REDIS_IMAGE = "redis:7.4-alpine"

Source = Literal["env", "docker", "local"]


def choose_source(env_value: str | None, docker_answers: Callable[[], bool]) -> Source:
    """The selection rule for one service (docker is only asked when needed)."""
    if env_value:
        return "env"
    if docker_answers():
        return "docker"
    return "local"


def docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=3)
        return bool(client.ping())
    except Exception:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalServers:
    """Kafka and Redis started by services/local.sh in a private folder."""

    directory: Path
    kafka_port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SERVICES_DIR": str(self.directory),
            "KAFKA_PORT": str(self.kafka_port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "REDIS_PORT": str(self.redis_port),
            "PYTHON": sys.executable,
            "KAFKA_HEAP_OPTS": "-Xms256m -Xmx768m",
            **self.extra_env,
        }

    def run(self, *args: str) -> None:
        result = subprocess.run(
            ["bash", str(LOCAL_SH), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise RuntimeError(f"services/local.sh {' '.join(args)} failed:\n{result.stderr}")

    def start(self, which: str = "all") -> None:
        self.run("up", which)

    def stop(self, which: str = "all") -> None:
        self.run("down", which)


@dataclass
class Services:
    kafka: str
    redis_url: str
    kafka_source: Source
    redis_source: Source
    local: LocalServers | None = None


@contextlib.contextmanager
def provide(env: Mapping[str, str] | None = None) -> Iterator[Services]:
    """Yield a Kafka address and a Redis URL, started as needed, stopped afterwards."""
    env = os.environ if env is None else env
    cached: dict[str, bool] = {}

    def docker_ok() -> bool:
        if "docker" not in cached:
            cached["docker"] = docker_answers()
        return cached["docker"]

    kafka_source = choose_source(env.get("KAFKA_BROKER_ADDRESS"), docker_ok)
    redis_source = choose_source(env.get("REDIS_URL"), docker_ok)
    with contextlib.ExitStack() as stack:
        local: LocalServers | None = None
        if "local" in (kafka_source, redis_source):
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wp-svc-")))
            local = LocalServers(directory)
            stack.callback(local.stop)
            local.start()
        kafka = {
            "env": lambda: env["KAFKA_BROKER_ADDRESS"],
            "docker": lambda: _docker_kafka(stack),
            "local": lambda: f"127.0.0.1:{local.kafka_port}" if local else "",
        }[kafka_source]()
        redis_url = {
            "env": lambda: env["REDIS_URL"],
            "docker": lambda: _docker_redis(stack),
            "local": lambda: f"redis://127.0.0.1:{local.redis_port}/0" if local else "",
        }[redis_source]()
        yield Services(kafka, redis_url, kafka_source, redis_source, local)


def _docker_kafka(stack: contextlib.ExitStack) -> str:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    port = free_port()
    container: Any = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(9092, port)
        .with_envs(
            KAFKA_NODE_ID="1",
            KAFKA_PROCESS_ROLES="broker,controller",
            KAFKA_LISTENERS="PLAINTEXT://:9092,CONTROLLER://:9093",
            KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://127.0.0.1:{port}",
            KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
            KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
        )
        .waiting_for(LogMessageWaitStrategy("Kafka Server started"))
    )
    stack.enter_context(container)
    return f"127.0.0.1:{port}"


def _docker_redis(stack: contextlib.ExitStack) -> str:
    from testcontainers.community.redis import RedisContainer

    container: Any = RedisContainer(REDIS_IMAGE)
    stack.enter_context(container)
    host = container.get_container_host_ip()
    return f"redis://{host}:{container.get_exposed_port(6379)}/0"
