"""Processor settings, from environment variables (docs/configuration.md lists them)."""

from __future__ import annotations

from pydantic import Field, model_validator

from wikipulse.settings import (
    EventTimeSettings,
    KafkaSettings,
    RedisSettings,
    ServiceSettings,
    WindowSettings,
)
from wikipulse.store.values import ROLLUPS, Rollup


class ProcessorSettings(
    ServiceSettings, KafkaSettings, RedisSettings, WindowSettings, EventTimeSettings
):
    consumer_group: str = Field("wikipulse-processor", description="shared by replicas")
    window_ttl_seconds: int = Field(
        24 * 3600, ge=60, description="how long windows (and their breakdowns) stay in Redis"
    )
    rollup_5m_ttl_seconds: int = Field(
        7 * 24 * 3600, ge=0, description="how long 5-minute buckets of history stay; 0: none"
    )
    rollup_1h_ttl_seconds: int = Field(
        90 * 24 * 3600, ge=0, description="how long hourly buckets of history stay; 0: none"
    )
    rollup_1d_ttl_seconds: int = Field(
        730 * 24 * 3600, ge=0, description="how long daily buckets of history stay; 0: none"
    )

    @model_validator(mode="after")
    def _history_outlives_the_windows(self) -> ProcessorSettings:
        """A bucket must outlive the windows it is made of: a bucket gone while its
        windows are still indexed could be made again from a window counted anew (a
        re-created topic's backfill) and listed complete, short."""
        for name, ttl in (
            ("ROLLUP_5M_TTL_SECONDS", self.rollup_5m_ttl_seconds),
            ("ROLLUP_1H_TTL_SECONDS", self.rollup_1h_ttl_seconds),
            ("ROLLUP_1D_TTL_SECONDS", self.rollup_1d_ttl_seconds),
        ):
            if 0 < ttl < self.window_ttl_seconds:
                raise ValueError(
                    f"{name}={ttl} is shorter than WINDOW_TTL_SECONDS="
                    f"{self.window_ttl_seconds}: history must outlive the windows (or be 0)"
                )
        return self

    @property
    def rollups(self) -> tuple[Rollup, ...]:
        """The resolutions complete windows roll up into, with their retention."""
        ttl = {
            "5m": self.rollup_5m_ttl_seconds,
            "1h": self.rollup_1h_ttl_seconds,
            "1d": self.rollup_1d_ttl_seconds,
        }
        return tuple(Rollup(r.name, r.seconds, ttl[r.name]) for r in ROLLUPS)

    state_dir: str = Field(
        "state",
        description="a writable directory Quix Streams creates at start-up; nothing is "
        "stored in it (the windows live in Redis)",
    )
    commit_interval_seconds: float = Field(
        0.5, gt=0, description="checkpoint period: how often final windows reach Redis"
    )
    write_dead_letters: bool = Field(
        True, description="write invalid records to `<raw>.dlq` (`wikipulse rebuild` turns it off)"
    )
    commit_watchdog_seconds: float = Field(
        120.0,
        ge=0,
        description="a checkpoint commit blocked this long while Kafka answers starts the "
        "processor over (a librdkafka hang); 0: never",
    )
    session_timeout_seconds: float = Field(
        10.0,
        ge=6,
        le=1800,
        description="a replica silent this long (e.g. SIGKILLed) loses its partitions",
    )
