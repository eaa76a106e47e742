"""Where tests and benchmarks get a real Kafka broker and a real Redis from.

``WIKIPULSE_TEST_SERVICES`` chooses the tier: ``auto`` (the default), ``env``,
``docker`` or ``local``. With ``auto`` each service is chosen on its own, in this order:

1. ``env``: ``KAFKA_BROKER_ADDRESS`` / ``REDIS_URL`` are set — use that server;
2. ``docker``: a Docker engine answers — testcontainers with ``KAFKA_IMAGE`` (default
   the official ``apache/kafka``, KRaft) and ``REDIS_IMAGE`` (default ``redis``); when
   the containers cannot start (no image, no registry), a warning says why and the
   local tier takes over;
3. ``local``: start the servers on free ports in a temporary folder with the same
   recipe as ``make services`` (``services/local.sh``), and stop them afterwards.

A forced tier never falls back: ``docker`` fails when the containers cannot start.
Never a mock: every integration test talks to one of these.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

ROOT = Path(__file__).resolve().parent.parent
LOCAL_SH = ROOT / "services" / "local.sh"
SELECTOR = "WIKIPULSE_TEST_SERVICES"
DEFAULT_KAFKA_IMAGE = "apache/kafka:4.1.1"
DEFAULT_REDIS_IMAGE = "redis:7.4-alpine"

Source = Literal["env", "docker", "local"]
TIERS = ("auto", "env", "docker", "local")


def choose_source(
    env_value: str | None, docker_answers: Callable[[], bool], tier: str = "auto"
) -> Source:
    """The selection rule for one service (docker is only asked when needed)."""
    if tier not in TIERS:
        raise ValueError(f"{SELECTOR}={tier!r}: expected one of {', '.join(TIERS)}")
    if tier == "env" and not env_value:
        raise ValueError(f"{SELECTOR}=env needs KAFKA_BROKER_ADDRESS and REDIS_URL")
    if tier != "auto":
        return tier  # type: ignore[return-value]
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
    """Kafka and Redis started by services/local.sh in a private folder.

    ``brokers=3`` makes Kafka a KRaft cluster of three combined broker+controller nodes
    (replication factor 3 and ``min.insync.replicas=2`` by default and for the internal
    topics, unclean leader election off), each on ports of its own; the fault suite
    kills and restarts them one by one (`kill_broker`, `start_broker`).

    ``redis_replicas=2`` makes Redis a primary with two replicas and three Sentinels
    (`sentinels` is ``REDIS_SENTINELS``); `primary`, `redis_pid` and `start_redis_node`
    let a scenario find, kill and bring back its nodes.
    """

    directory: Path
    kafka_port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    brokers: int = 1
    #: client ports of nodes 2.. of a cluster (node 1 listens on ``kafka_port``)
    more_ports: list[int] = field(default_factory=list)
    more_controller_ports: list[int] = field(default_factory=list)
    redis_replicas: int = 0
    #: ports of Redis nodes 2.. (node 1, the first primary, listens on ``redis_port``)
    replica_ports: list[int] = field(default_factory=list)
    sentinel_ports: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        while len(self.more_ports) < self.brokers - 1:
            self.more_ports.append(free_port())
        while len(self.more_controller_ports) < self.brokers - 1:
            self.more_controller_ports.append(free_port())
        while len(self.replica_ports) < self.redis_replicas:
            self.replica_ports.append(free_port())
        while self.redis_replicas and len(self.sentinel_ports) < 3:
            self.sentinel_ports.append(free_port())

    @property
    def kafka_ports(self) -> list[int]:
        """The client port of each broker, node 1 first."""
        return [self.kafka_port, *self.more_ports[: self.brokers - 1]]

    @property
    def bootstrap(self) -> str:
        """``KAFKA_BROKER_ADDRESS`` for this Kafka: every broker, comma-separated, so a
        client can start while any one of them is down."""
        return ",".join(f"127.0.0.1:{port}" for port in self.kafka_ports)

    @property
    def env(self) -> dict[str, str]:
        controllers = [self.controller_port, *self.more_controller_ports[: self.brokers - 1]]
        return {
            **os.environ,
            "SERVICES_DIR": str(self.directory),
            "KAFKA_PORT": str(self.kafka_port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_BROKERS": str(self.brokers),
            "KAFKA_PORTS": ",".join(map(str, self.kafka_ports)),
            "KAFKA_CONTROLLER_PORTS": ",".join(map(str, controllers)),
            "REDIS_PORT": str(self.redis_port),
            "REDIS_REPLICAS": str(self.redis_replicas),
            "REDIS_REPLICA_PORTS": ",".join(map(str, self.replica_ports)),
            "REDIS_SENTINEL_PORTS": ",".join(map(str, self.sentinel_ports)),
            "PYTHON": sys.executable,
            # three JVMs share two cores and the tests' processes in CI
            "KAFKA_HEAP_OPTS": "-Xms256m -Xmx768m" if self.brokers == 1 else "-Xms128m -Xmx512m",
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

    # ------------------------------------------------------------ one broker of a cluster

    def broker_pid(self, node: int) -> int | None:
        """The pid of broker ``node`` (1-based) while it runs, else None."""
        pidfile = self.directory / (f"kafka-{node}" if self.brokers > 1 else "kafka") / "kafka.pid"
        try:
            pid = int(pidfile.read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid if process_running(pid) else None

    def kill_broker(self, node: int, timeout: float = 30) -> None:
        """SIGKILL broker ``node``: no controlled shutdown, no flush; returns once it is gone."""
        pid = self.broker_pid(node)
        if pid is None:
            raise RuntimeError(f"broker {node} is not running")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        # its main thread may be a zombie while the others still hold the sockets
        while self.broker_pid(node) is not None or _listening(self.kafka_ports[node - 1]):
            if time.monotonic() > deadline:
                raise RuntimeError(f"broker {node} (pid {pid}) outlived SIGKILL for {timeout} s")
            time.sleep(0.1)

    def start_broker(self, node: int) -> None:
        """(Re)start broker ``node`` of the cluster; returns once it answers metadata."""
        self.start(f"kafka-{node}")

    def stop_broker(self, node: int) -> None:
        """Stop broker ``node`` cleanly (SIGTERM: a controlled shutdown)."""
        self.stop(f"kafka-{node}")

    # ------------------------------------------------------------ Redis with Sentinel

    @property
    def redis_ports(self) -> list[int]:
        """The port of each Redis node, node 1 (the first primary) first."""
        return [self.redis_port, *self.replica_ports]

    @property
    def sentinels(self) -> str:
        """``REDIS_SENTINELS`` for this Redis (empty when it runs alone)."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def primary(self) -> int | None:
        """The node (1-based) the Sentinels name as primary now (None: no answer)."""
        import redis

        for port in self.sentinel_ports:
            try:
                found = redis.Redis(port=port, socket_timeout=2).sentinel_master("wikipulse")
            except redis.RedisError:
                continue
            state = cast(dict[str, Any], found)
            if state["is_master"] and not state["is_sdown"] and state["port"] in self.redis_ports:
                return self.redis_ports.index(state["port"]) + 1
        return None

    def redis_pid(self, node: int) -> int | None:
        """The pid of Redis node ``node`` (1-based) while it runs, else None."""
        try:
            pid = int((self.directory / f"redis-{node}" / "redis.pid").read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid if process_running(pid) else None

    def kill_redis_node(self, node: int, timeout: float = 10) -> None:
        """SIGKILL Redis node ``node``; returns once nothing listens on its port."""
        pid = self.redis_pid(node)
        if pid is None:
            raise RuntimeError(f"redis node {node} is not running")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while self.redis_pid(node) is not None or _listening(self.redis_ports[node - 1]):
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis node {node} (pid {pid}) outlived SIGKILL")
            time.sleep(0.05)
        (self.directory / f"redis-{node}" / "redis.pid").unlink(missing_ok=True)

    def start_redis_node(self, node: int) -> None:
        """(Re)start Redis node ``node`` with the configuration Sentinel left it."""
        self.start(f"redis-{node}")


def _listening(port: int) -> bool:
    """Whether something accepts connections on ``port`` of this machine."""
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
    except OSError:
        return False
    return True


def process_running(pid: int) -> bool:
    """Whether ``pid`` runs, as opposed to having exited and not yet been reaped (this
    machine's init may take its time: a zombie still answers ``kill -0``)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@dataclass
class Services:
    kafka: str
    redis_url: str
    kafka_source: Source
    redis_source: Source
    local: LocalServers | None = None
    #: ``REDIS_SENTINELS`` when Redis is a primary with replicas and Sentinels
    sentinels: str = ""


@contextlib.contextmanager
def provide(
    env: Mapping[str, str] | None = None, need: tuple[str, ...] = ("kafka", "redis")
) -> Iterator[Services]:
    """Yield a Kafka address and a Redis URL, started as needed, stopped afterwards.

    ``need`` names the servers wanted; one left out is not started, and its address in
    the result is empty. ``"cluster"`` instead of ``"kafka"`` asks for a three-broker
    KRaft cluster: always local servers (`LocalServers` with ``brokers=3``), whatever the
    tier, because the tests that need one kill and restart its brokers; its address is
    the bootstrap list of all three.
    """
    env = os.environ if env is None else env
    tier = env.get(SELECTOR, "auto") or "auto"
    cached: dict[str, bool] = {}

    def docker_ok() -> bool:
        if "docker" not in cached:
            cached["docker"] = docker_answers()
        return cached["docker"]

    # a server not needed is "env": nothing is started for it
    kafka_source: Source = "env"
    redis_source: Source = "env"
    if "cluster" in need:
        kafka_source = "local"
    elif "kafka" in need:
        kafka_source = choose_source(env.get("KAFKA_BROKER_ADDRESS"), docker_ok, tier)
    if "redis" in need:
        redis_source = choose_source(env.get("REDIS_URL"), docker_ok, tier)
    with contextlib.ExitStack() as stack:
        docker: dict[str, str] = {}
        images = {
            name: env.get(f"{name.upper()}_IMAGE") or default
            for name, source, default in (
                ("kafka", kafka_source, DEFAULT_KAFKA_IMAGE),
                ("redis", redis_source, DEFAULT_REDIS_IMAGE),
            )
            if source == "docker"
        }
        if images:
            try:
                docker = _docker_servers(stack, images)
            except Exception as exc:
                if tier == "docker":
                    raise
                warnings.warn(
                    f"Docker answers but its containers did not start ({exc}); "
                    f"using local servers (set {SELECTOR}=docker to make this an error)",
                    stacklevel=1,
                )
                kafka_source = "local" if kafka_source == "docker" else kafka_source
                redis_source = "local" if redis_source == "docker" else redis_source
        local: LocalServers | None = None
        local_needs = [
            n for n, s in (("kafka", kafka_source), ("redis", redis_source)) if s == "local"
        ]
        if local_needs:
            which = local_needs[0] if len(local_needs) == 1 else "all"
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wp-svc-")))
            local = LocalServers(directory, brokers=3 if "cluster" in need else 1)
            stack.callback(local.stop, which)
            local.start(which)
        addresses: dict[Source, tuple[str, str]] = {
            "env": (env.get("KAFKA_BROKER_ADDRESS", ""), env.get("REDIS_URL", "")),
            "local": (
                (local.bootstrap, f"redis://127.0.0.1:{local.redis_port}/0") if local else ("", "")
            ),
            "docker": (docker.get("kafka", ""), docker.get("redis", "")),
        }
        yield Services(
            addresses[kafka_source][0],
            addresses[redis_source][1],
            kafka_source,
            redis_source,
            local,
        )


def _docker_servers(stack: contextlib.ExitStack, images: dict[str, str]) -> dict[str, str]:
    """Containers for the services named in ``images`` ("kafka", "redis"), removed when
    ``stack`` closes; their addresses."""
    from testcontainers.core.config import testcontainers_config

    for image in images.values():
        if not _image_available(image):
            raise RuntimeError(f"image {image} is neither present nor pullable")
    if "TESTCONTAINERS_RYUK_DISABLED" not in os.environ and not _image_available(
        testcontainers_config.ryuk_image
    ):
        # the reaper only removes containers of a crashed session; the stack removes
        # them on every normal end, so tests need not fail where its image is missing
        testcontainers_config.ryuk_disabled = True
    start = {"kafka": _docker_kafka, "redis": _docker_redis}
    return {name: start[name](stack, image) for name, image in images.items()}


def _image_available(image: str) -> bool:
    """Whether ``image`` is present, pulling it when a registry can be reached."""
    import docker

    client = docker.from_env(timeout=60)
    try:
        client.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.pull(image)
        return True
    except docker.errors.APIError:
        return False


def _docker_kafka(stack: contextlib.ExitStack, image: str) -> str:
    """A KRaft broker whose host-side listener advertises the published port.

    Two listeners, as in docker-compose.yml: ``PLAINTEXT`` for the tests on the host
    (advertised as ``127.0.0.1:<published port>``) and ``BROKER`` for the broker's own
    inter-broker traffic (``localhost:9094`` inside the container). With a single
    listener the broker would try to reach itself at the host's published port, which
    does not exist inside the container, and exactly-once transactions never complete.
    """
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    port = free_port()
    container: Any = (
        DockerContainer(image)
        .with_bind_ports(9092, port)
        .with_envs(
            KAFKA_NODE_ID="1",
            KAFKA_PROCESS_ROLES="broker,controller",
            KAFKA_LISTENERS="PLAINTEXT://:9092,BROKER://:9094,CONTROLLER://:9093",
            KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://127.0.0.1:{port},BROKER://localhost:9094",
            KAFKA_INTER_BROKER_LISTENER_NAME="BROKER",
            KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=(
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT"
            ),
            KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
            KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR="1",
            KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
        )
        .waiting_for(LogMessageWaitStrategy("Kafka Server started").with_startup_timeout(120))
    )
    stack.enter_context(container)
    return f"127.0.0.1:{port}"


def _docker_redis(stack: contextlib.ExitStack, image: str) -> str:
    from testcontainers.community.redis import RedisContainer

    container: Any = RedisContainer(image)
    stack.enter_context(container)
    return f"redis://127.0.0.1:{container.get_exposed_port(6379)}/0"
