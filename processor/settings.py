"""Processor settings, from environment variables (see the README's table)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from pydantic import Field

from wikipulse.kafka import KafkaSettings


class ProcessorSettings(KafkaSettings):
    redis_url: str = Field(
        "redis://localhost:6379/0", description="redis:// or rediss://, password allowed"
    )
    redis_key_prefix: str = Field("wikipulse:", description="prefix of every key written")
    consumer_group: str = Field("wikipulse-processor", description="shared by replicas")
    window_seconds: int = Field(30, ge=1, description="tumbling window length")
    grace_seconds: int = Field(5, ge=0, description="how late an event may still count")
    window_ttl_seconds: int = Field(7 * 24 * 3600, ge=60, description="how long windows live")
    state_dir: str = Field("state", description="RocksDB state (rebuilt from changelogs)")
    metrics_port: int | None = Field(None, description="Prometheus /metrics; off when unset")
    commit_interval_seconds: float = Field(
        0.5, gt=0, description="checkpoint period: how often final windows reach Redis"
    )
    dedup_ids: int = Field(
        4000,
        ge=1,
        le=100_000,
        description="recent meta.ids each wiki's window checks copies against (>= MAX_IN_FLIGHT)",
    )
    session_timeout_seconds: float = Field(
        10.0,
        ge=6,
        le=1800,
        description="a replica silent this long (e.g. SIGKILLed) loses its partitions",
    )

    @property
    def window_ms(self) -> int:
        return self.window_seconds * 1000

    @property
    def grace_ms(self) -> int:
        return self.grace_seconds * 1000

    @property
    def redis_url_redacted(self) -> str:
        """The Redis URL for logs: any password replaced by ``***``."""
        return redact_url(self.redis_url)


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
