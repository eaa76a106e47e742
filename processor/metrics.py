"""Processor counters: every record is counted once here or accounted for by kind.

Counters survive neither restarts nor replays exactly (a replay after a crash counts
again); the exact numbers are the windows in Redis.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class RecordTally(Collector):
    """``wikipulse_processor_records_total`` by verdict, kept in a plain dict.

    Every raw record adds one here, on the hot path. A `prometheus_client.Counter`
    takes a lock on each increment, which cost as much as judging the record; a dict
    increment under the GIL costs a few percent of that, and the scrape reads the dict
    (docs/decisions.md has the figures).
    """

    def __init__(self) -> None:
        self.counts: defaultdict[str, int] = defaultdict(int)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "wikipulse_processor_records",
            "raw records by verdict: event, canary, invalid, heartbeat, late, rekey",
            labels=["verdict"],
        )
        for verdict, count in list(self.counts.items()):
            family.add_metric([verdict], count)
        yield family


RECORDS = RecordTally()
REGISTRY.register(RECORDS)
WINDOWS_WRITTEN = Counter(
    "wikipulse_processor_window_writes", "per-partition windows finalized in Redis"
)
REPLAYED = Counter(
    "wikipulse_processor_replayed_records",
    "records read again after a crash or rebalance, skipped because Redis counted them",
)
WINDOWS_COMPLETE = Counter("wikipulse_processor_windows_complete", "windows added to the index")
REDIS_BACKPRESSURE = Counter(
    "wikipulse_processor_redis_backpressure", "flushes refused because Redis was unreachable"
)
CLOSED_UNTIL = Gauge(
    "wikipulse_processor_closed_until_seconds",
    "end of the newest window this replica finalized, per partition",
    ["partition"],
)
RESTARTS_IN_A_ROW = Gauge(
    "wikipulse_processor_restarts_in_a_row",
    "times the processor started over after a failure without a healthy minute in between",
)
WINDOWS_PARTIAL = Counter(
    "wikipulse_processor_windows_partial",
    "windows published partial: their counts lack records the raw topic no longer holds, "
    "or that came before the stream's first record",
)
ALREADY_FINAL = Counter(
    "wikipulse_processor_already_final_events",
    "events not added because their window had been published complete before "
    "(a re-created raw topic's backfill)",
)
REDIS_WENT_BACK = Counter(
    "wikipulse_processor_redis_went_back",
    "writes refused because Redis held less than this replica had written (lost writes)",
)
RECOUNTS = Counter(
    "wikipulse_processor_recounts",
    "partitions sought back because Redis held less than Kafka's group had committed",
)
RECOUNTING = Gauge(
    "wikipulse_processor_recounting_partitions",
    "partitions being recounted from the raw topic after Redis lost writes (unhealthy while > 0)",
)
UNCOUNTABLE = Counter(
    "wikipulse_processor_uncountable_offsets",
    "raw-topic offsets deleted by retention before they were counted",
)
DEAD_LETTERS_KEPT = Counter(
    "wikipulse_processor_dead_letters_not_resent",
    "invalid records read again in a recount whose dead letter was in Kafka already",
)
