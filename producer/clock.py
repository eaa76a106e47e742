"""The stream's event-time clock, and the time a heartbeat may carry.

Heartbeats move a partition's event time when no event reaches it; this module says how
far they may: `EventClock` reads the stream's time only while it can vouch for it, and
`heartbeat_time` keeps a heartbeat within what the processor believes.
"""

from __future__ import annotations

import threading
import time

from wikipulse.events import latest_believable_ms


class EventClock:
    """The stream's event time: the newest event time seen, advanced by wall time since.

    Extrapolating is right only while events flow (a live stream is never silent for
    long), so the clock reads None while disconnected and while the reader is held back
    by Kafka: no heartbeat then claims that time passed for events that are still
    waiting to be read (on reconnect, or in the socket while Kafka is down) — they would
    reach their partition behind the heartbeat and count as late.

    A connection that stalls without closing looks exactly like a quiet stream until the
    read timeout fires, so the clock also runs at most ``max_ahead_ms`` past the newest
    event. Kept at or below the processor's grace, events held up by a stall still count
    when they arrive.

    Only evidence that nothing was pending lets it run further (`vouch`): a keep-alive
    comment received after the newest event, or a reconnect with ``Last-Event-ID`` that
    delivered nothing newer. As of the moment vouched for, the stream was quiet, so the
    clock may run to that moment (plus ``max_ahead_ms``, for what may be stalled since),
    and a quiet stream's last window closes.
    """

    def __init__(self, max_ahead_ms: int | None = None) -> None:
        self._max_ahead_ms = max_ahead_ms
        self._lock = threading.Lock()
        self._newest_ms: int | None = None
        self._seen_at = 0.0  # when extrapolation (re)started: newest event, connect, unhold
        self._observed_at = 0.0  # when the newest event was read
        self._quiet_at = 0.0  # the latest moment known to have had nothing pending
        self._live = False
        self._held = False

    def observe(self, time_ms: int) -> None:
        now = time.monotonic()  # once: this runs for every event
        with self._lock:
            if self._newest_ms is None or time_ms > self._newest_ms:
                self._newest_ms = time_ms
                self._observed_at = now
            self._seen_at = now

    def vouch(self, quiet_at: float) -> None:
        """Nothing newer than the newest event was pending at ``quiet_at`` (monotonic)."""
        with self._lock:
            self._quiet_at = max(self._quiet_at, quiet_at)

    def set_live(self, live: bool) -> None:
        with self._lock:
            self._live = live
            self._seen_at = time.monotonic()

    def hold(self, held: bool) -> None:
        """Stop (or restart) extrapolating while the reader waits for Kafka."""
        with self._lock:
            self._held = held
            self._seen_at = time.monotonic()

    @property
    def newest_ms(self) -> int | None:
        return self._newest_ms

    def now_ms(self) -> int | None:
        with self._lock:
            if not self._live or self._held or self._newest_ms is None:
                return None
            now = time.monotonic()
            ahead = now - self._seen_at
            if self._max_ahead_ms is not None:
                ahead = min(ahead, self._max_ahead_ms / 1000)
                if self._quiet_at > self._observed_at:
                    vouched = self._quiet_at - self._observed_at + self._max_ahead_ms / 1000
                    ahead = max(ahead, min(now - self._observed_at, vouched))
            return self._newest_ms + int(ahead * 1000)


def heartbeat_time(last_ms: int, clock_ms: int, wall_ms: int, max_future_skew_s: float) -> int:
    """The next heartbeat's timestamp: the clock's, never behind the last one, and never
    past what the processor believes (`wikipulse.events.latest_believable_ms`): the clock
    may run up to ``HEARTBEAT_MAX_AHEAD_SECONDS`` past an event dated just within the
    skew, and a heartbeat beyond it would be dead-lettered instead of moving time."""
    return max(last_ms, min(clock_ms, latest_believable_ms(wall_ms, max_future_skew_s)))
