"""Processor counters: every record is counted once here or accounted for by kind.

Counters survive neither restarts nor replays exactly (a replay after a crash counts
again); the exact numbers are the windows in Redis.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECORDS = Counter(
    "wikipulse_processor_records",
    "raw records by verdict: event, canary, invalid, heartbeat, late, rekey",
    ["verdict"],
)
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
