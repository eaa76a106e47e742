"""Producer counters, on /metrics and in the periodic log line.

The hot path counts in plain ints (`Tally`) and adds them to the Prometheus counters
once per chunk read: ``RECEIVED.labels(kind).inc()`` per event cost several µs (a label
lookup and a lock each), a tenth of the producer's whole budget per event.
"""

from __future__ import annotations

from collections import Counter as Counts

from prometheus_client import Counter, Gauge

RECEIVED = Counter("wikipulse_producer_events_received", "SSE message events read", ["kind"])
PUBLISHED = Counter("wikipulse_producer_events_published", "events acknowledged by Kafka")
BYTES = Counter("wikipulse_producer_bytes_received", "bytes read from the SSE stream")
RECONNECTS = Counter("wikipulse_producer_reconnects", "reconnects to the SSE stream", ["reason"])
DELIVERY_FAILURES = Counter("wikipulse_producer_delivery_failures", "records Kafka refused")
FUTURE_EVENTS = Counter(
    "wikipulse_producer_future_events",
    "events dated more than MAX_FUTURE_SKEW_SECONDS past wall time (dead-lettered)",
)
HEARTBEATS = Counter("wikipulse_producer_heartbeats", "heartbeat records sent")
IN_FLIGHT = Gauge("wikipulse_producer_in_flight", "events sent and not yet acknowledged")
NEWEST_EVENT_TIME = Gauge(
    "wikipulse_producer_newest_event_time_seconds", "event time of the newest event read"
)


class Tally:
    """Counts kept as plain ints by one thread, added to the counters by `flush`."""

    def __init__(self) -> None:
        self.received: Counts[str] = Counts()  # RECEIVED by kind

    def flush(self) -> None:
        """Add what was counted since the last flush (call from the counting thread)."""
        if self.received:
            counted, self.received = self.received, Counts()
            for kind, n in counted.items():
                RECEIVED.labels(kind).inc(n)
