"""Producer settings, from environment variables (docs/configuration.md lists them)."""

from __future__ import annotations

import time

from pydantic import Field, field_validator, model_validator

from producer.resume import backfill_since
from wikipulse import __version__
from wikipulse.settings import EventTimeSettings, KafkaSettings, ServiceSettings

WIKIMEDIA_RECENTCHANGE = "https://stream.wikimedia.org/v2/stream/recentchange"
DEFAULT_USER_AGENT = (
    f"WikiPulse/{__version__} (https://github.com/wikipulse/wikipulse; "
    "live per-wiki edit counts) httpx"
)


class ProducerSettings(ServiceSettings, KafkaSettings, EventTimeSettings):
    sse_url: str = Field(WIKIMEDIA_RECENTCHANGE, description="the SSE stream to read")
    user_agent: str = Field(
        DEFAULT_USER_AGENT, min_length=8, description="Wikimedia refuses anonymous clients"
    )
    heartbeat_seconds: float = Field(
        0.25, gt=0, description="time signal per partition, so quiet windows close"
    )
    heartbeat_max_ahead_seconds: float = Field(
        5.0,
        ge=0,
        description="how far heartbeats may run past the newest event (keep <= GRACE_SECONDS)",
    )
    read_timeout_seconds: float = Field(
        30.0, gt=0, description="no byte for this long means a dead connection"
    )
    quiet_probe_seconds: float = Field(
        3.0,
        gt=0,
        description="a reconnect that delivers nothing newer within this long proves quiet",
    )
    connect_timeout_seconds: float = Field(
        10.0, gt=0, description="how long a connection attempt to the stream may take"
    )
    backoff_initial_seconds: float = Field(
        1.0, gt=0, description="first reconnect delay; doubles while reconnects fail"
    )
    backoff_max_seconds: float = Field(60.0, gt=0, description="longest reconnect delay")
    max_in_flight: int = Field(
        2000, ge=1, description="events sent but not yet acked; reading pauses beyond it"
    )
    delivery_timeout_ms: int = Field(
        300_000, ge=1000, description="give up a delivery after this; the stream is re-read"
    )
    dedup_ids: int = Field(
        50_000,
        ge=1000,
        le=10_000_000,
        description="recent `meta.id`s written, so a copy read again is dropped "
        "(at least twice `MAX_IN_FLIGHT`; about 120 bytes each)",
    )
    max_event_bytes: int = Field(
        1_000_000, ge=1024, description="larger events become invalid records without data"
    )
    backfill: str = Field(
        "1h",
        description="on a first start (no resume point in the raw topic), history to read "
        "first: a duration (`90m`, `1h`), an ISO 8601 time or epoch ms; `0` turns it off",
    )

    @field_validator("backfill")
    @classmethod
    def _valid_backfill(cls, value: str) -> str:
        backfill_since(value, int(time.time() * 1000))  # raises with the reason
        return value

    @model_validator(mode="after")
    def _dedup_outlasts_a_re_read(self) -> ProducerSettings:
        if self.dedup_ids < 2 * self.max_in_flight:
            raise ValueError(
                f"DEDUP_IDS={self.dedup_ids} must be at least twice "
                f"MAX_IN_FLIGHT={self.max_in_flight}: a re-read repeats up to that many"
            )
        return self
