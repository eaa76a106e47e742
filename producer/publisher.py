"""Turning SSE events into Kafka records, with delivery tracking and heartbeats.

Each event is parsed once here (`wikipulse.events.parse`) and the verdict travels with
the record: key = ``server_name``, timestamp = the event's own time, and headers for
the kind, the event's identity and the resume bookkeeping. The payload stays the exact
bytes Wikimedia sent. An event whose id was written recently is a copy (a resume
repeats some, `producer.copies` says why) and is not written again.

Back-pressure: at most ``max_in_flight`` events may wait for Kafka's acknowledgement.
Beyond that `publish` blocks, so when Kafka is down the producer stops reading the
stream instead of buffering it in memory or dropping it.

Heartbeats (`producer.heartbeats`) keep quiet partitions' event time moving, stamped
with the stream's clock (`producer.clock`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from producer import metrics
from producer.clock import EventClock
from producer.copies import RecentIds
from producer.heartbeats import Heartbeats
from producer.resume import BookkeepingHeaders, InFlight, Recovered, ResumePoint
from producer.settings import ProducerSettings
from producer.sse import SseEvent
from producer.tails import recover
from wikipulse.events import (
    FUTURE_REASON,
    PARTITIONER,
    UNKEYED_KEY,
    Canary,
    Event,
    Header,
    Kind,
    heartbeat_record,
    latest_believable_ms,
    parse,
)
from wikipulse.kafka import MAX_MESSAGE_BYTES, ensure_topic

log = logging.getLogger(__name__)


class Stopped(Exception):
    """Raised out of a blocking wait when shutdown was requested."""


def tail_depth(settings: ProducerSettings) -> int:
    """Records read from each partition's tail on start and after a failed delivery: past
    every event that can be in flight, plus the heartbeats written meanwhile."""
    return 2 * settings.max_in_flight + 1000


class Publisher:
    """Owns the Kafka producer, the in-flight tracker, the ids written and the heartbeats."""

    def __init__(
        self,
        settings: ProducerSettings,
        stop: threading.Event,
        partitions: int,
        recovered: Recovered,
        clock: EventClock | None = None,
    ) -> None:
        self.settings = settings
        self.topic = settings.raw_topic
        self._stop = stop
        self.partitions = partitions
        start = recovered.point or ResumePoint(0, None)
        self.in_flight = InFlight(start, recovered.next_seq)
        self._bookkeeping = BookkeepingHeaders()
        #: ids of the events written (or in flight), seeded with those in Kafka's tails
        self.written = RecentIds(settings.dedup_ids, recovered.event_ids)
        #: no resume point in Kafka: the stream starts from ``since`` or from now
        self.first_start = recovered.point is None
        if recovered.point:
            log.info("resuming after SSE id %s (seq %d)", start.sse_id, start.seq)
        self.clock = clock or EventClock(int(settings.heartbeat_max_ahead_seconds * 1000))
        # Delivery reports run in whichever thread polls: the reader, or the heartbeat
        # thread while the stream is quiet (so acks and the resume point stay current).
        self._flight_lock = threading.RLock()
        self._producer = Producer(
            {
                **settings.client_config(),
                "enable.idempotence": True,
                "acks": "all",
                "partitioner": PARTITIONER,  # the partition Quix and Java pick for a key
                "linger.ms": 20,
                "compression.type": "lz4",
                "message.max.bytes": MAX_MESSAGE_BYTES,
                "queue.buffering.max.messages": settings.max_in_flight * 2 + 10_000,
                "delivery.timeout.ms": settings.delivery_timeout_ms,
                "log_level": 4,
            }
        )
        self._heartbeats = Heartbeats(
            self.clock,
            partitions,
            settings.heartbeat_seconds,
            settings.max_future_skew_seconds,
            send=lambda partition, time_ms: self._producer.produce(
                self.topic, **heartbeat_record(partition, time_ms)
            ),
            serve=self._serve_quiet,
            stop=stop,
        )
        #: a restart continues a stream: its partitions have their first records already
        self._started = not self.first_start
        #: counted on the hot path, added to the metrics per chunk (`poll`)
        self.tally = metrics.Tally()
        self._acked_count = 0  # acknowledgements, under `_flight_lock` ...
        self._acked_reported = 0  # ... and how many of them the metric has
        # read when scraped, not set per event
        metrics.IN_FLIGHT.set_function(lambda: len(self.in_flight))
        metrics.NEWEST_EVENT_TIME.set_function(lambda: (self.clock.newest_ms or 0) / 1000)

    @classmethod
    def open(
        cls, settings: ProducerSettings, stop: threading.Event, clock: EventClock | None = None
    ) -> Publisher:
        """Create the raw topic if needed, recover the resume point and the ids written
        from its tails (`tail_depth`), and publish."""
        partitions = ensure_topic(settings, settings.raw_topic, settings.raw_topic_partitions)
        recovered = recover(settings, settings.raw_topic, depth=tail_depth(settings))
        return cls(settings, stop, partitions, recovered, clock)

    def start(self) -> None:
        self._heartbeats.start()

    def resume_id(self) -> str | None:
        return self.in_flight.acked_point.sse_id

    @property
    def unacknowledged(self) -> int:
        """Events sent and not yet acknowledged by Kafka."""
        return len(self.in_flight)

    @property
    def needs_rewind(self) -> bool:
        return self.in_flight.failed

    def publish(self, event: SseEvent, received_ms: int) -> None:
        """Send one SSE event to Kafka; blocks while too many are unacknowledged."""
        if event.event != "message":
            self.tally.received["other"] += 1
            log.debug("ignoring SSE event of type %r", event.event)
            return
        while len(self.in_flight) >= self.settings.max_in_flight and not self.in_flight.failed:
            self._wait_for_kafka()
        if self.in_flight.failed:
            # a failed event stays in flight for good, so a full window would wait forever:
            # this event and the rest are read again after the rewind (`wait_for_resume_id`)
            return
        described = self._describe(event, received_ms)
        if described is None:
            return
        key, time_ms, headers, event_id = described
        if not self._started and event_id is not None:  # an event: its time is the stream's
            self._mark_the_start(time_ms)
        with self._flight_lock:
            acked = self.in_flight.acked_point
            seq = self.in_flight.sent(event.id)
            if event_id is not None:
                self.written.add(event_id)
        headers += self._bookkeeping.headers(seq, event.id, acked)
        self._produce(
            value=event.data,
            key=key,
            timestamp=time_ms,
            headers=headers,
            on_delivery=self._on_delivery(seq, event_id),
        )

    def _describe(
        self, event: SseEvent, received_ms: int
    ) -> tuple[str, int, list[tuple[str, bytes]], str | None] | None:
        """Key, timestamp, verdict headers and event id for one event; None for a copy."""
        received = self.tally.received
        if event.oversized:
            received["invalid"] += 1
            reason = (
                f"event data of {event.oversized} bytes exceeds {self.settings.max_event_bytes}"
            )
            return (
                UNKEYED_KEY,
                received_ms,
                [(Header.KIND, Kind.INVALID), (Header.REASON, reason.encode())],
                None,
            )
        # judged against wall time before the clock sees it: an event dated in the future,
        # trusted, would move every heartbeat ahead and make all later events late
        parsed = parse(
            event.data, latest_believable_ms(received_ms, self.settings.max_future_skew_seconds)
        )
        if isinstance(parsed, Event):
            with self._flight_lock:
                copy = parsed.event_id in self.written
            if copy:
                received["duplicate"] += 1
                log.debug("dropping a copy of event %s", parsed.event_id[:64])
                return None
            received["event"] += 1
            self.clock.observe(parsed.time_ms)
            headers = [
                (Header.KIND, Kind.EVENT),
                (Header.EVENT_ID, parsed.event_id.encode()),
                (Header.FACTS, parsed.facts),
            ]
            return parsed.server_name, parsed.time_ms, headers, parsed.event_id
        if isinstance(parsed, Canary):
            received["canary"] += 1
            headers = [(Header.KIND, Kind.CANARY)]
            return UNKEYED_KEY, parsed.time_ms or received_ms, headers, None
        received["invalid"] += 1
        if parsed.reason.startswith(FUTURE_REASON):
            metrics.FUTURE_EVENTS.inc()
        headers = [(Header.KIND, Kind.INVALID), (Header.REASON, parsed.reason.encode())]
        return UNKEYED_KEY, received_ms, headers, None

    def _mark_the_start(self, time_ms: int) -> None:
        """Before a new stream's first record, a heartbeat at its time in every partition.

        The processor publishes a window as partial when a partition started counting
        inside it (it cannot know what came before), and judges each partition by its own
        first record. Without this, a partition whose first record came minutes of event
        time later (a backfill read at full speed, a quiet partition) would make all the
        windows up to it partial; with it, only the stream's first window is.
        """
        self._started = True
        for partition in range(self.partitions):
            self._produce(**heartbeat_record(partition, time_ms))
        metrics.HEARTBEATS.inc(self.partitions)

    def _on_delivery(
        self, seq: int, event_id: str | None
    ) -> Callable[[KafkaError | None, Message], None]:
        def delivered(err: KafkaError | None, _msg: Message) -> None:
            with self._flight_lock:
                if err is None:
                    self.in_flight.acked(seq)
                    self._acked_count += 1
                else:
                    self.in_flight.failed_delivery(seq)
                    if event_id is not None:  # to be written when the stream is re-read
                        self.written.discard(event_id)
            if err is not None:
                metrics.DELIVERY_FAILURES.inc()
                log.error("kafka did not take event seq %d: %s", seq, err)

        return delivered

    def _produce(self, **kwargs: Any) -> None:
        while True:
            try:
                self._producer.produce(self.topic, **kwargs)
                return
            except BufferError:
                self._wait_for_kafka()

    def _wait_for_kafka(self) -> None:
        if self._stop.is_set():
            raise Stopped
        self.clock.hold(True)
        try:
            self._producer.poll(0.1)
        finally:
            self.clock.hold(False)

    def poll(self) -> None:
        """Serve delivery reports without blocking; bring the metrics up to date (called
        by the reader once per chunk)."""
        self._producer.poll(0)
        self.tally.flush()
        self._report_acked()

    def _report_acked(self) -> None:
        """Add the acknowledgements since the last call to the published metric."""
        with self._flight_lock:
            new = self._acked_count - self._acked_reported
            self._acked_reported = self._acked_count
        if new:
            metrics.PUBLISHED.inc(new)

    def wait_for_resume_id(self) -> str | None:
        """Wait until every in-flight event is acked or failed; return the resume id.

        Called before each reconnect. While Kafka is down this waits (and so does the
        stream); a failed delivery rewinds to the last gap-free acknowledged event.

        Before a rewind every delivery must be settled, and the ids of what did reach
        Kafka are read back from its tails: a delivery reported failed (a timeout) may
        still have been written, and its event, read again, must then be a copy.
        """
        while len(self.in_flight) and not self.in_flight.failed and not self._stop.is_set():
            self._producer.flush(1.0)
        if self.in_flight.failed:
            while self._producer.flush(1.0) and not self._stop.is_set():
                pass  # every delivery report served: no failure can follow the rewind
            self._recall_written()
            with self._flight_lock:
                point = self.in_flight.rewind()
            log.warning("re-reading the stream after SSE id %s (seq %d)", point.sse_id, point.seq)
        return self.resume_id()

    def _recall_written(self) -> None:
        """Add the ids of the events in Kafka's tails to `written` (retried while Kafka
        does not answer: nothing can be written then anyway)."""
        while not self._stop.is_set():
            try:
                recovered = recover(self.settings, self.topic, depth=tail_depth(self.settings))
            except (KafkaException, RuntimeError) as exc:
                log.warning("reading back what reached Kafka failed (%s); retrying", exc)
                self._stop.wait(1.0)
                continue
            with self._flight_lock:
                for event_id in recovered.event_ids:
                    self.written.add(event_id)
            return

    def close(self, timeout: float = 30.0) -> None:
        """Flush what is in flight (bounded), then stop heartbeats."""
        self.clock.set_live(False)
        left = self._producer.flush(timeout)
        self.tally.flush()
        self._report_acked()
        if left:
            log.warning("%d records still unacknowledged at shutdown; they will be re-read", left)
        self._heartbeats.join(timeout=2)

    def _serve_quiet(self) -> None:
        """Delivery reports served while the stream is quiet: the acks count too."""
        self._producer.poll(0)
        self._report_acked()
