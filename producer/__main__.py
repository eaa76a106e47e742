"""``wikipulse-producer`` / ``python -m producer``: Wikimedia's SSE stream into Kafka."""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from datetime import UTC, datetime

from confluent_kafka import KafkaException

from producer.clock import EventClock
from producer.publisher import Publisher, Stopped
from producer.resume import backfill_since
from producer.settings import ProducerSettings
from producer.stream import Interruptible, StreamReader
from wikipulse.kafka import describe_cluster, report_protection, startup_failure
from wikipulse.service import start

log = logging.getLogger("producer")

#: allocations between two collections of the youngest generation (Python's default: 700)
GC_THRESHOLD = 20_000


def main() -> None:
    stop = threading.Event()
    interruptible = Interruptible()

    def request_stop(signal_name: str) -> None:
        log.info("%s received: flushing and stopping", signal_name)
        stop.set()
        if interruptible.now:
            raise Stopped

    settings = start(ProducerSettings, "wikipulse-producer", on_stop=request_stop)
    log.info(
        "reading %s into %s at %s as %r",
        settings.sse_url,
        settings.raw_topic,
        settings.kafka_broker_address,
        settings.user_agent,
    )
    try:
        clock = EventClock(int(settings.heartbeat_max_ahead_seconds * 1000))
        publisher = Publisher.open(settings, stop, clock)
    except Stopped:
        return
    except KafkaException as exc:  # a set-up problem: one clear line, no stack trace
        sys.exit(startup_failure("wikipulse-producer", settings, exc))
    log.info("joined Kafka cluster %s", describe_cluster(settings))
    report_protection("wikipulse-producer", settings, [settings.raw_topic])
    since_ms = None
    if publisher.first_start:
        since_ms = backfill_since(settings.backfill, int(time.time() * 1000))
        if since_ms is None:
            log.info("no events in %s yet: starting from the live stream", settings.raw_topic)
        else:
            since = datetime.fromtimestamp(since_ms / 1000, UTC).isoformat(timespec="seconds")
            log.info(
                "no events in %s yet: backfilling from %s (BACKFILL=%s)",
                settings.raw_topic,
                since,
                settings.backfill,
            )
    # Every event allocates a few dozen container objects (its parsed JSON, the record's
    # headers, its delivery callback) that refcounting frees; at the default threshold
    # (700) the cyclic collector ran every ~20 events and cost ~5 % of the CPU per event.
    # What start-up built stays for good: frozen, no collection walks it again.
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD)
    publisher.start()
    try:
        StreamReader(settings, publisher, clock, stop, interruptible, since_ms=since_ms).run()
    except Stopped:
        pass
    finally:
        stop.set()
        publisher.close()
    log.info("stopped")


if __name__ == "__main__":
    main()
