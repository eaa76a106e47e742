"""The quiet probe: when a reconnect's silence proves the stream had nothing pending.

Wikimedia sends nothing while a stream is quiet, so heartbeats could never close a quiet
stream's last window without some proof that nothing is pending (`EventClock.vouch`).
The proof used here: a connection with ``Last-Event-ID`` that, ``quiet_seconds`` after
it last delivered anything, has delivered nothing newer than the newest event.

What it may vouch for is narrow on purpose (issue #25, hole 4):

- the moment of the connection's last delivery (copies of events already read, which a
  resume by timestamp sends first), or of its request when it delivered nothing: the
  silence proves nothing about an earlier moment;
- never across an outage: when connection attempts failed since the newest event, a
  server slow to send its first event after it (it may be seeking the resume point
  through a long backlog) looks exactly like a quiet one, and vouching for the
  reconnect would move the clock over the whole outage, making the backlog late. The
  clock then waits for a new event (or a keep-alive) before it runs past
  ``HEARTBEAT_MAX_AHEAD_SECONDS`` again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from producer.clock import EventClock


class QuietProbe:
    """Watches one connection; vouches once for quiet when its silence proves it.

    ``waiting`` says whether the reader is blocked on the socket right now (not on
    Kafka, with events unread behind it). ``outage`` is whether connection attempts
    failed since the newest event: the probe then never vouches.
    """

    def __init__(
        self,
        clock: EventClock,
        quiet_seconds: float,
        waiting: Callable[[], bool],
        *,
        requested_at: float,
        outage: bool,
    ) -> None:
        self._clock = clock
        self._quiet_seconds = quiet_seconds
        self._waiting = waiting
        self._outage = outage
        self._newest_before = clock.newest_ms
        self._last_delivery = requested_at
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="quiet-probe", daemon=True)

    def start(self) -> None:
        if not self._outage:
            self._thread.start()

    def delivered(self, at: float) -> None:
        """The connection delivered events (copies included) at ``at`` (monotonic)."""
        self._last_delivery = at

    def cancel(self) -> None:
        self._done.set()

    def verdict(self, now: float) -> float | None:
        """The moment to vouch for as of ``now``, or None (yet, or at all)."""
        if self._outage or self._clock.newest_ms != self._newest_before:
            return None  # no proof across an outage; news needs none
        if now - self._last_delivery < self._quiet_seconds or not self._waiting():
            return None
        return self._last_delivery

    def _watch(self) -> None:
        while not self._done.wait(self._remaining()):
            if self._clock.newest_ms != self._newest_before:
                return  # the stream is not quiet
            quiet_at = self.verdict(time.monotonic())
            if quiet_at is not None:
                self._clock.vouch(quiet_at)
                return

    def _remaining(self) -> float:
        return max(0.05, self._last_delivery + self._quiet_seconds - time.monotonic())
