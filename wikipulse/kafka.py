"""Topic creation and start-up errors, the same in every service.

Whichever service starts first creates the raw topic, so both call `ensure_topic`.
The connection settings are `wikipulse.settings.KafkaSettings`.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

from wikipulse.settings import KafkaSettings

log = logging.getLogger(__name__)

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


def cluster_identity(settings: KafkaSettings) -> str:
    """Which Kafka cluster the bootstrap list reached: its id and its brokers, for the
    start-up log, so a log shows where a service wrote (two clusters may share names)."""
    admin = AdminClient({**settings.client_config(), "log_level": 3})
    try:
        found = admin.describe_cluster(request_timeout=15).result()
    except KafkaException as exc:  # informative only: never a reason not to start
        return f"(not described: {exc})"
    brokers = ", ".join(
        f"{n.id}@{n.host}:{n.port}" for n in sorted(found.nodes, key=lambda n: n.id)
    )
    return f"{found.cluster_id} with {len(found.nodes)} broker(s): {brokers}"


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
    topic = NewTopic(
        name,
        num_partitions=partitions,
        replication_factor=settings.raw_topic_replication_factor,
        config=new_topic_config(settings),
    )
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
