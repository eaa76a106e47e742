"""Topic creation, the cluster's shape and start-up errors, the same in every service.

Whichever service starts first creates the raw topic, so both call `ensure_topic`.
Unless told otherwise it lets the cluster choose the replicas (its
``default.replication.factor`` and ``min.insync.replicas``), so a service started with
nothing but the bootstrap list gets what the cluster was set up for; `report_protection`
then says, at start-up, on ``/healthz`` and in a metric, when a topic on a cluster of
three or more brokers could lose acknowledged records with one broker (fewer than 3
replicas, or ``min.insync.replicas`` below 2). The connection settings are
`wikipulse.settings.KafkaSettings`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from prometheus_client import Gauge

from wikipulse.observability import warn
from wikipulse.settings import KafkaSettings

log = logging.getLogger(__name__)

#: A cluster this large keeps every acknowledged record through a broker's loss only
#: when a topic has `SAFE_REPLICAS` replicas and needs `SAFE_MIN_INSYNC` of them in sync.
SAFE_CLUSTER, SAFE_REPLICAS, SAFE_MIN_INSYNC = 3, 3, 2

TOPIC_REPLICAS = Gauge(
    "wikipulse_kafka_topic_replicas",
    "replicas of the topic's least replicated partition",
    ["topic"],
)
TOPIC_MIN_INSYNC = Gauge(
    "wikipulse_kafka_topic_min_insync_replicas", "the topic's min.insync.replicas", ["topic"]
)
TOPIC_UNPROTECTED = Gauge(
    "wikipulse_kafka_topic_unprotected",
    "1 when, on a cluster of 3 or more brokers, the topic has fewer than 3 replicas or "
    "min.insync.replicas below 2: a broker's loss can lose acknowledged records",
    ["topic"],
)

#: Largest raw record accepted by the raw and dead-letter topics. Wikimedia events are
#: ~1 KB, but some log events carry large parameters; 4 MiB leaves room for them.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def new_topic_config(settings: KafkaSettings) -> dict[str, str]:
    """The configuration of the topics the services create (raw and dead-letter): room
    for large events, and on a cluster the in-sync replicas a write needs."""
    config = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
    if settings.min_insync_replicas is not None:
        config["min.insync.replicas"] = str(settings.min_insync_replicas)
    return config


def startup_failure(service: str, settings: KafkaSettings, exc: KafkaException) -> str:
    """The one-line message a service exits with when Kafka cannot be used at start-up."""
    reason = exc.args[0].str() if exc.args and isinstance(exc.args[0], KafkaError) else exc
    return f"{service}: Kafka at {settings.kafka_broker_address} is not usable: {reason}"


def ensure_topic(settings: KafkaSettings, name: str, partitions: int) -> int:
    """Create ``name`` with ``partitions`` unless it exists; return its partition count.

    Safe to race: both services call it at start-up and exactly one creation wins.
    An existing topic is never altered (a smaller count is logged, not "fixed").
    """
    broker_errors: list[KafkaError] = []
    admin = AdminClient(
        {**settings.client_config(), "log_level": 3, "error_cb": broker_errors.append}
    )
    deadline = time.monotonic() + settings.kafka_startup_timeout_seconds
    while True:
        try:
            return _ensure_topic_once(admin, settings, name, partitions)
        except KafkaException as exc:
            admin.poll(0)  # serves error_cb
            if time.monotonic() > deadline:
                raise _with_cause(exc, broker_errors) from exc
            log.warning("kafka not ready for topic %s yet (%s); retrying", name, exc)
            time.sleep(1.0)


@dataclass(frozen=True, slots=True)
class Cluster:
    """Which Kafka cluster the bootstrap list reached (``brokers`` empty when it could
    not be described: informative only, never a reason not to start)."""

    id: str
    brokers: tuple[str, ...]  # "id@host:port", by id

    def __str__(self) -> str:
        if not self.brokers:
            return f"(not described: {self.id})"
        return f"{self.id} with {len(self.brokers)} broker(s): {', '.join(self.brokers)}"


def describe_cluster(settings: KafkaSettings) -> Cluster:
    """The cluster's id and brokers, for the start-up log (so a log shows where a service
    wrote: two clusters may share names) and for the defaults that depend on its size."""
    admin = AdminClient({**settings.client_config(), "log_level": 3})
    try:
        found = admin.describe_cluster(request_timeout=15).result()
    except KafkaException as exc:
        return Cluster(str(exc), ())
    nodes = sorted(found.nodes, key=lambda n: n.id)
    return Cluster(str(found.cluster_id), tuple(f"{n.id}@{n.host}:{n.port}" for n in nodes))


@dataclass(frozen=True, slots=True)
class Protection:
    """How well a topic survives a broker's loss on the cluster it lives on."""

    topic: str
    replicas: int  # of its least replicated partition
    min_insync: int | None  # None: not described
    brokers: int

    @property
    def problem(self) -> str | None:
        """Why the topic can lose acknowledged records with one broker, or None."""
        if self.brokers < SAFE_CLUSTER:
            return None  # a single broker (or two) cannot do better: nothing to report
        if self.replicas >= SAFE_REPLICAS and (self.min_insync or 0) >= SAFE_MIN_INSYNC:
            return None
        return (
            f"topic {self.topic} has {self.replicas} replica(s) and min.insync.replicas="
            f"{self.min_insync if self.min_insync is not None else '?'} on a cluster of "
            f"{self.brokers} brokers: losing a broker can lose acknowledged records; it "
            f"needs {SAFE_REPLICAS} replicas and min.insync.replicas={SAFE_MIN_INSYNC} "
            "(docs/operations.md#a-kafka-cluster)"
        )


def protection(settings: KafkaSettings, topics: list[str]) -> list[Protection]:
    """What `Protection` each of ``topics`` has (existing topics only)."""
    admin = AdminClient({**settings.client_config(), "log_level": 3})
    metadata = admin.list_topics(timeout=15)
    resources = [ConfigResource("topic", name) for name in topics]
    configs = admin.describe_configs(resources, request_timeout=15)
    found = []
    for name, resource in zip(topics, resources, strict=True):
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None or not topic.partitions:
            continue
        try:
            min_insync: int | None = int(configs[resource].result()["min.insync.replicas"].value)
        except (KafkaException, KeyError, ValueError):
            min_insync = None
        replicas = min(len(p.replicas) for p in topic.partitions.values())
        found.append(Protection(name, replicas, min_insync, len(metadata.brokers)))
    return found


def report_protection(service: str, settings: KafkaSettings, topics: list[str]) -> None:
    """Log, export (``wikipulse_kafka_topic_*``) and put on ``/healthz`` how well
    ``topics`` survive a broker's loss: an existing topic is never altered, so a topic
    created with too few replicas (a cluster whose defaults are a single broker's) is
    reported where an operator looks, not only in a checklist."""
    try:
        found = protection(settings, topics)
    except KafkaException as exc:  # informative only: never a reason not to start
        log.warning("could not describe topics %s: %s", ", ".join(topics), exc)
        return
    for topic in found:
        TOPIC_REPLICAS.labels(topic.topic).set(topic.replicas)
        if topic.min_insync is not None:
            TOPIC_MIN_INSYNC.labels(topic.topic).set(topic.min_insync)
        problem = topic.problem
        TOPIC_UNPROTECTED.labels(topic.topic).set(1 if problem else 0)
        warn(f"kafka-topic:{topic.topic}", problem)
        if problem:
            log.error("%s: %s", service, problem)


def topic_id(settings: KafkaSettings, name: str) -> str:
    """The broker's id of topic ``name``: a topic deleted and created again gets a new one,
    which tells its offsets from the old topic's."""
    admin = AdminClient({**settings.client_config(), "log_level": 3})
    described = admin.describe_topics(TopicCollection([name]), request_timeout=15)[name]
    return str(described.result().topic_id)


def _with_cause(exc: KafkaException, broker_errors: list[KafkaError]) -> KafkaException:
    """``exc``, naming the broker's last complaint when there was one.

    A failed request only says "Broker transport failure"; why (wrong password, TLS,
    a plaintext client on a SASL_SSL port) arrives separately, through ``error_cb``.
    """
    specific = [e for e in broker_errors if e.code() != KafkaError._ALL_BROKERS_DOWN]
    if not specific or not exc.args or not isinstance(exc.args[0], KafkaError):
        return exc
    error: KafkaError = exc.args[0]
    return KafkaException(KafkaError(error.code(), f"{error.str()} ({specific[-1].str()})"))


def _ensure_topic_once(
    admin: AdminClient, settings: KafkaSettings, name: str, partitions: int
) -> int:
    metadata = admin.list_topics(timeout=10)
    existing = metadata.topics.get(name)
    if existing is not None and existing.error is None:
        count = len(existing.partitions)
        if count < partitions:
            log.warning(
                "topic %s has %d partitions, fewer than the %d configured", name, count, partitions
            )
        return count
    # -1: the cluster's default.replication.factor (KIP-464)
    replicas = settings.raw_topic_replication_factor or -1
    config = new_topic_config(settings)
    topic = NewTopic(name, num_partitions=partitions, replication_factor=replicas, config=config)
    future = admin.create_topics([topic], request_timeout=15)[name]
    try:
        future.result()
        log.info("created topic %s with %d partitions", name, partitions)
        _wait_for_leaders(admin, name)
        return partitions
    except KafkaException as exc:
        if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
            # another service created it a moment ago: the broker may not list it yet,
            # and a client that looked it up now would be told it does not exist
            _wait_for_leaders(admin, name)
            return _ensure_topic_once(admin, settings, name, partitions)
        raise


def _wait_for_leaders(admin: AdminClient, name: str, timeout: float = 30.0) -> None:
    """A new topic's partitions answer reads and writes only once they have leaders."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        topic = admin.list_topics(name, timeout=10).topics.get(name)
        if topic and topic.partitions and all(p.leader >= 0 for p in topic.partitions.values()):
            return
        time.sleep(0.2)
