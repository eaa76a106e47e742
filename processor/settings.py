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
        for rollup in ROLLUPS:
            ttl = self.rollup_ttl_seconds(rollup.name)
            if 0 < ttl < self.window_ttl_seconds:
                raise ValueError(
                    f"ROLLUP_{rollup.name.upper()}_TTL_SECONDS={ttl} is shorter than "
                    f"WINDOW_TTL_SECONDS={self.window_ttl_seconds}: history must outlive "
                    "the windows (or be 0)"
                )
        return self

    @model_validator(mode="after")
    def _a_checkpoint_fits_in_its_transaction(self) -> ProcessorSettings:
        """A checkpoint's transaction may last its interval (from its first dead letter)
        and the flush to Redis, whose confirmation may wait the timeout twice (`WAITAOF`,
        then `WAIT` for the replicas): a timeout shorter than that, with room for the
        writes themselves, aborts every slow but good checkpoint and starts the processor
        over."""
        least = self.commit_interval_seconds + 2 * self.redis_wait_timeout_seconds + 2
        if self.transaction_timeout_seconds < least:
            raise ValueError(
                f"TRANSACTION_TIMEOUT_SECONDS={self.transaction_timeout_seconds:g} is shorter "
                f"than a checkpoint may last: COMMIT_INTERVAL_SECONDS + "
                f"2 x REDIS_WAIT_TIMEOUT_SECONDS + 2 s = {least:g}"
            )
        return self

    def rollup_ttl_seconds(self, resolution: str) -> int:
        """``ROLLUP_<R>_TTL_SECONDS``: the retention of rollup ``R`` (one of `ROLLUPS`,
        each with a field above)."""
        ttl: int = getattr(self, f"rollup_{resolution}_ttl_seconds")
        return ttl

    @property
    def rollups(self) -> tuple[Rollup, ...]:
        """The resolutions complete windows roll up into, with their retention."""
        return tuple(Rollup(r.name, r.seconds, self.rollup_ttl_seconds(r.name)) for r in ROLLUPS)

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
    transaction_timeout_seconds: float = Field(
        15.0,
        gt=0,
        le=900,
        description="a replica that stops in the middle of its commit (frozen, partitioned) "
        "holds its partitions until Kafka aborts its transaction, this long after its first "
        "dead letter or offsets reached the broker (plus the broker's 10 s sweep); librdkafka "
        "caps a dead letter's delivery and a request at it too, and a transaction that "
        "outlasts it starts the processor over (nothing is lost)",
    )
    session_timeout_seconds: float | None = Field(
        None,
        ge=6,
        le=1800,
        description="a replica silent this long (e.g. SIGKILLed) loses its partitions; "
        "unset: 10 with one broker, 20 when the cluster has more (it outlasts a dead "
        "broker's group coordinator moving)",
    )
    redis_wait_replicas: int | None = Field(
        None,
        ge=0,
        description="replicas that must have a checkpoint's Redis writes before its offsets "
        "are committed (`WAIT`); unset: 1 when Redis has replicas (Sentinel, or replicas "
        "connected to the primary), else 0",
    )
    redis_wait_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="how long a checkpoint waits for the replicas (or the fsync) before it "
        "is read again instead of committed",
    )

    def session_timeout_for(self, brokers: int) -> float:
        """The consumer session timeout on a cluster of ``brokers`` brokers.

        When a broker dies, its group coordinators move only once the controllers fence
        it (``broker.session.timeout.ms``, 9 s) and the new coordinator has loaded the
        group; a consumer whose session is shorter leaves the group meanwhile and its
        transaction fails. One broker has no coordinator to move, and a shorter session
        hands a SIGKILLed replica's partitions over sooner.
        """
        if self.session_timeout_seconds is not None:
            return self.session_timeout_seconds
        return 20.0 if brokers > 1 else 10.0
