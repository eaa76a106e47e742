"""Kafka settings and topic creation shared by every service.

The same environment variables mean the same thing in every service: the broker
address, the security pass-through and the raw topic's name and partition count.
Whichever service starts first creates the raw topic, so both call `ensure_topic`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

#: Largest raw record accepted by the raw and dead-letter topics. Wikimedia events are
#: ~1 KB, but some log events carry large parameters; 4 MiB leaves room for them.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class KafkaSettings(BaseSettings):
    """Connection to Kafka and the raw topic, from the environment."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    kafka_broker_address: str = Field("localhost:9092", description="bootstrap servers")
    kafka_security_protocol: str = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: str | None = Field(None, description="e.g. PLAIN, SCRAM-SHA-512")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = Field(None, description="CA file for SSL/SASL_SSL")
    raw_topic: str = Field("wikimedia.recentchange", description="raw events topic")
    raw_topic_partitions: int = Field(6, ge=1, description="partitions when creating it")
    raw_topic_replication_factor: int = Field(1, ge=1, description="replicas when creating it")
    kafka_startup_timeout_seconds: float = Field(
        60.0, gt=0, description="how long start-up waits for Kafka before giving up"
    )

    @property
    def dlq_topic(self) -> str:
        return f"{self.raw_topic}.dlq"

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings for a client of this cluster (secrets included)."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.kafka_broker_address,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            config["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            config["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password:
            config["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_ca_location:
            config["ssl.ca.location"] = self.kafka_ssl_ca_location
        return config


def unusable(service: str, settings: KafkaSettings, exc: KafkaException) -> str:
    """The one line a service exits with when Kafka cannot be used at start-up."""
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
        config={"max.message.bytes": str(MAX_MESSAGE_BYTES)},
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
