"""The connect / read / reconnect loop around one SSE connection at a time.

Every (re)connect sends ``Last-Event-ID`` = the newest event Kafka has acknowledged
(see `producer.resume`), so a disconnect, a stall or a restart neither loses nor
repeats events. Reconnects back off exponentially with jitter, honour the server's
``retry:`` field and ``Retry-After`` on 429/503, and are logged with their reason.
Wikimedia allows two connections per IP: run one producer, never scale it.

Proof of quiet (`EventClock.vouch`): heartbeats may close a quiet stream's last window
only on evidence that nothing is pending. A ``:`` keep-alive comment is such evidence
(a server sends it when it has nothing else). A server that sends nothing while quiet,
as Wikimedia, is probed (`producer.probe`): the read timeout ends the silent connection,
and when the reconnect with ``Last-Event-ID`` delivers nothing newer within
``quiet_probe_seconds`` of its last delivery, the stream was quiet as of that delivery
(or of the request, when it delivered nothing) — unless connection attempts failed
since the newest event: after an outage, silence may be a server slow to serve the
backlog, and the probe does not vouch.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from producer import metrics
from producer.clock import EventClock
from producer.probe import QuietProbe
from producer.publisher import Publisher, Stopped
from producer.settings import ProducerSettings
from producer.sse import SseDecoder

log = logging.getLogger(__name__)


class Disconnected(Exception):
    """The connection ended; ``reason`` is logged and ``retry_after`` honoured."""

    def __init__(self, reason: str, label: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.label = label
        self.retry_after = retry_after


@dataclass
class Interruptible:
    """Set while the main thread blocks on the network or a back-off sleep.

    The SIGTERM handler raises `Stopped` only then, so a shutdown never interrupts
    the bookkeeping between receiving an event and handing it to Kafka.
    """

    now: bool = False


class Backoff:
    """Exponential back-off with jitter, reset by a connection that delivered events."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum, self.attempt = initial, maximum, 0

    def reset(self) -> None:
        self.attempt = 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.initial * 2.0**self.attempt)
        self.attempt += 1
        return delay * random.uniform(0.5, 1.0)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class StreamReader:
    def __init__(
        self,
        settings: ProducerSettings,
        publisher: Publisher,
        clock: EventClock,
        stop: threading.Event,
        interruptible: Interruptible,
        since_ms: int | None = None,
    ) -> None:
        self.settings = settings
        #: a first start's backfill: asked for while there is no id to resume after
        self.since_ms = since_ms
        self._history_checked = since_ms is None
        self.publisher = publisher
        #: the stream's event time, shared with the publisher and its heartbeats
        self.clock = clock
        self.stop = stop
        self.interruptible = interruptible
        self.backoff = Backoff(settings.backoff_initial_seconds, settings.backoff_max_seconds)
        self.server_retry: float | None = None
        self._last_log = time.monotonic()
        self.events_read = 0
        self.reconnects = 0
        #: the newest event time when a connection attempt last failed (refused, or no
        #: answer): while it is still the newest, an outage lies after it (`QuietProbe`)
        self._failed_at_newest: int | None = None
        self._failed = False
        self._answered = False  # whether the current attempt got its 200
        self.client = httpx.Client(
            timeout=httpx.Timeout(
                connect=settings.connect_timeout_seconds,
                read=settings.read_timeout_seconds,
                write=10.0,
                pool=10.0,
            ),
            headers={"User-Agent": settings.user_agent},
            follow_redirects=True,
        )

    def run(self) -> None:
        """Read until `stop` is set."""
        try:
            while not self.stop.is_set():
                resume_id = self.publisher.wait_for_resume_id()
                if self.stop.is_set():
                    break
                self._answered = False
                try:
                    delivered = self._connect_and_read(resume_id)
                    raise Disconnected(
                        f"server closed the stream after {delivered} events", "closed"
                    )
                except Disconnected as exc:
                    self._pause(exc)
                except httpx.TimeoutException as exc:
                    self._pause(Disconnected(f"stalled or timed out: {exc!r}", "timeout"))
                except httpx.HTTPError as exc:
                    self._pause(Disconnected(f"connection failed: {exc!r}", "network"))
                finally:
                    self.clock.set_live(False)
                    if not self._answered:
                        self._failed = True
                        self._failed_at_newest = self.clock.newest_ms
        except Stopped:
            pass
        finally:
            self.client.close()

    def _connect_and_read(self, resume_id: str | None) -> int:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        params = {}
        if resume_id is not None:
            headers["Last-Event-ID"] = resume_id
        elif self.since_ms is not None:
            params["since"] = str(self.since_ms)
        delivered = 0
        clock = self.clock
        probe = QuietProbe(
            clock,
            self.settings.quiet_probe_seconds,
            lambda: self.interruptible.now,  # on the socket, not on Kafka
            requested_at=time.monotonic(),
            outage=self._outage_since_newest(),
        )
        self.interruptible.now = True
        try:
            url = self.settings.sse_url
            with self.client.stream("GET", url, headers=headers, params=params) as response:
                if response.status_code != 200:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    raise Disconnected(
                        f"HTTP {response.status_code} from {self.settings.sse_url}",
                        f"http_{response.status_code}",
                        retry_after if response.status_code in (429, 503) else None,
                    )
                self._answered = True
                start = f"since {params['since']}" if params else f"Last-Event-ID {resume_id}"
                log.info("connected to %s (%s)", self.settings.sse_url, start)
                decoder = SseDecoder(resume_id, max_event_bytes=self.settings.max_event_bytes)
                clock.set_live(True)
                if resume_id is not None:
                    probe.start()  # nothing newer within the probe time: quiet
                chunks = response.iter_bytes()
                while True:
                    self.interruptible.now = True
                    chunk = next(chunks, None)
                    self.interruptible.now = False
                    if chunk is None:
                        break
                    metrics.BYTES.inc(len(chunk))
                    received_ms = int(time.time() * 1000)
                    comments = decoder.comments
                    events = decoder.feed(chunk)
                    if events:
                        probe.delivered(time.monotonic())
                    for event in events:
                        self.publisher.publish(event, received_ms)
                    if decoder.comments > comments:  # a keep-alive: nothing was pending
                        clock.vouch(time.monotonic())
                    delivered += len(events)
                    self.events_read += len(events)
                    if events and not self._history_checked:
                        self._check_history(clock.newest_ms)
                    self.server_retry = (
                        decoder.retry_ms / 1000 if decoder.retry_ms is not None else None
                    )
                    self.publisher.poll()
                    if delivered:
                        self.backoff.reset()
                    if self.publisher.needs_rewind:
                        raise Disconnected("kafka refused a delivery", "delivery_failed")
                    if self.stop.is_set():
                        raise Stopped
                    self._log_progress()
        finally:
            probe.cancel()
            self.interruptible.now = False
        return delivered

    def _outage_since_newest(self) -> bool:
        """Whether connection attempts failed since the newest event was read."""
        return self._failed and self._failed_at_newest == self.clock.newest_ms

    def _check_history(self, first_ms: int | None) -> None:
        """Say once when the stream's history starts later than the backfill asked for."""
        if first_ms is None or self.since_ms is None:
            return
        self._history_checked = True
        if first_ms - self.since_ms > 60_000:
            log.warning(
                "backfill asked for events since %s; the stream's history starts at %s",
                _iso(self.since_ms),
                _iso(first_ms),
            )

    def _pause(self, exc: Disconnected) -> None:
        delay = self.backoff.next_delay()
        if exc.label == "closed" and self.server_retry is not None:
            delay = self.server_retry * random.uniform(1.0, 1.2)
        if exc.retry_after is not None:
            delay = max(delay, min(exc.retry_after, 3600.0))
        metrics.RECONNECTS.labels(exc.label).inc()
        self.reconnects += 1
        log.warning(
            "reconnecting in %.1f s: %s (resume after %s)",
            delay,
            exc.reason,
            self.publisher.resume_id(),
        )
        self.interruptible.now = True
        try:
            self.stop.wait(delay)
        finally:
            self.interruptible.now = False

    def _log_progress(self) -> None:
        now = time.monotonic()
        if now - self._last_log < 30:
            return
        self._last_log = now
        newest = self.clock.newest_ms
        log.info(
            "events read %d, in flight %d, reconnects %d, newest event time %s",
            self.events_read,
            self.publisher.unacknowledged,
            self.reconnects,
            _iso(newest) if newest else "-",
        )


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
