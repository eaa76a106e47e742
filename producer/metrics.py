"""Producer counters, on /metrics and in the periodic log line."""

from __future__ import annotations

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
