"""The settings every service shares, as pieces each service composes.

The same environment variable means the same thing in every service because it is
declared once, here: a service's settings class inherits the pieces it needs
(`ProcessorSettings` is `ServiceSettings` + `KafkaSettings` + `RedisSettings` +
`WindowSettings` + its own fields). Each field's ``description`` is its documentation:
docs/configuration.md is generated from them (``make docs``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wikipulse.events import DEFAULT_MAX_FUTURE_SKEW_SECONDS
from wikipulse.unusual import Rule


class EnvSettings(BaseSettings):
    """Read from environment variables of the same name, in any case."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")


class ServiceSettings(EnvSettings):
    """What every long-running service has: a log level and an optional /metrics port."""

    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="port of the Prometheus `/metrics`; off when unset"
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"unknown log level {value!r}")
        return level


class KafkaSettings(EnvSettings):
    """Connection to Kafka and the raw topic."""

    kafka_broker_address: str = Field("localhost:9092", description="bootstrap servers")
    kafka_security_protocol: str = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: str | None = Field(None, description="e.g. PLAIN, SCRAM-SHA-512")
    kafka_sasl_username: str | None = Field(None, description="SASL user")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (never logged)")
    kafka_ssl_ca_location: str | None = Field(None, description="CA file for SSL and SASL_SSL")
    raw_topic: str = Field(
        "wikimedia.recentchange", description="raw events topic; its dead letters go to `<raw>.dlq`"
    )
    raw_topic_partitions: int = Field(
        6, ge=1, description="partitions when a service creates the raw topic"
    )
    raw_topic_replication_factor: int | None = Field(
        None,
        ge=1,
        description="replicas when a service creates the raw or the dead-letter topic; "
        "unset: the cluster's `default.replication.factor` (3 on a cluster set up for it)",
    )
    raw_topic_min_insync_replicas: int | None = Field(
        None,
        ge=1,
        description="`min.insync.replicas` of the topics a service creates; unset: 2 when "
        "`RAW_TOPIC_REPLICATION_FACTOR` is 3 or more, else the cluster's default",
    )
    kafka_startup_timeout_seconds: float = Field(
        60.0, gt=0, description="how long start-up waits for Kafka before giving up"
    )

    @model_validator(mode="after")
    def _isr_within_replicas(self) -> KafkaSettings:
        isr, replicas = self.raw_topic_min_insync_replicas, self.raw_topic_replication_factor
        if isr is not None and replicas is not None and isr > replicas:
            # every write would be refused (NOT_ENOUGH_REPLICAS) with all brokers up
            raise ValueError(
                f"RAW_TOPIC_MIN_INSYNC_REPLICAS={isr} exceeds "
                f"RAW_TOPIC_REPLICATION_FACTOR={replicas}"
            )
        return self

    @property
    def min_insync_replicas(self) -> int | None:
        """``min.insync.replicas`` for the topics a service creates (None: the broker's).

        With ``acks=all`` a write is acknowledged once this many replicas have it, so 2 of
        3 keeps every acknowledged record through the loss of any one broker, and stops
        writes (rather than risking them) when only one is left.
        """
        if self.raw_topic_min_insync_replicas is not None:
            return self.raw_topic_min_insync_replicas
        replicas = self.raw_topic_replication_factor
        return 2 if replicas is not None and replicas >= 3 else None

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


class EventTimeSettings(EnvSettings):
    """Which event times are believed (producer and processor apply the same rule)."""

    max_future_skew_seconds: float = Field(
        DEFAULT_MAX_FUTURE_SKEW_SECONDS,
        ge=0,
        description="events dated further past wall time are dead-lettered: one trusted "
        "would make every later event late",
    )


class RedisSettings(EnvSettings):
    """Where the windows live (see `wikipulse.store` for the key layout): one Redis by
    URL, or the primary that Sentinels name (`wikipulse.redis_client`)."""

    redis_url: str = Field(
        "redis://localhost:6379/0",
        description="`redis://` or `rediss://`, password allowed; with `REDIS_SENTINELS` "
        "its database, user, password and TLS apply to the primary Sentinel names, its "
        "host and port are not used",
    )
    redis_key_prefix: str = Field("wikipulse:", description="prefix of every key")
    redis_sentinels: str = Field(
        "",
        description="comma-separated `host:port` of Redis Sentinels; when set, the primary "
        "is the one they name (a failover is followed without a restart)",
    )
    redis_sentinel_master: str = Field(
        "wikipulse", min_length=1, description="the name the Sentinels monitor the primary as"
    )
    redis_sentinel_password: SecretStr | None = Field(
        None, description="the Sentinels' own password, when they have one (never logged)"
    )

    @field_validator("redis_sentinels")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        for address in filter(None, (a.strip() for a in value.split(","))):
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"REDIS_SENTINELS: {address!r} is not host:port")
        return value

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """The Sentinels' addresses (empty: Redis is reached by `redis_url` alone)."""
        found = []
        for address in filter(None, (a.strip() for a in self.redis_sentinels.split(","))):
            host, _, port = address.rpartition(":")
            found.append((host.strip("[]"), int(port)))
        return found

    @property
    def redis_url_redacted(self) -> str:
        """The Redis URL for logs: any password replaced by ``***``."""
        return redact_url(self.redis_url)

    @property
    def redis_described(self) -> str:
        """Where Redis is, for logs: the URL (redacted), and the Sentinels when set."""
        if not self.sentinels:
            return self.redis_url_redacted
        sentinels = ",".join(f"{h}:{p}" for h, p in self.sentinels)
        return (
            f"primary {self.redis_sentinel_master!r} of Sentinels {sentinels} "
            f"({self.redis_url_redacted})"
        )


class WindowSettings(EnvSettings):
    """The windows the processor counts in. Readers take them from Redis, not from here."""

    window_seconds: int = Field(30, ge=1, description="tumbling window length")
    grace_seconds: int = Field(5, ge=0, description="how late an event may be and still count")

    @property
    def window_ms(self) -> int:
        return self.window_seconds * 1000

    @property
    def grace_ms(self) -> int:
        return self.grace_seconds * 1000


class UnusualSettings(EnvSettings):
    """When a wiki's count is unusual (readers: dashboard, CLI; see `wikipulse.unusual`)."""

    unusual_baseline_minutes: int = Field(
        60, ge=5, le=24 * 60, description="each wiki's baseline: the complete windows this far back"
    )
    unusual_threshold: float = Field(
        5.0, gt=0, description="robust deviations (MAD-based) above the baseline median"
    )
    unusual_min_count: int = Field(
        20, ge=1, description="a wiki with fewer events in a window is never unusual"
    )
    unusual_min_baseline_windows: int = Field(
        10, ge=1, description="windows of history needed before anything is judged"
    )

    @property
    def unusual_rule(self) -> Rule:
        return Rule(
            threshold=self.unusual_threshold,
            min_count=self.unusual_min_count,
            min_baseline_windows=self.unusual_min_baseline_windows,
        )

    @property
    def unusual_baseline_ms(self) -> int:
        return self.unusual_baseline_minutes * 60_000


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
