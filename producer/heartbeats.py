"""Heartbeats: event time for partitions the stream leaves quiet.

A window can only close when newer data reaches its partition, and a quiet partition
gets none. So while the stream is connected a background thread writes, every
``heartbeat_seconds``, one empty record to *each* partition, keyed `HEARTBEAT_KEY` and
stamped with the stream's event-time clock (`producer.clock`). The processor never
counts them; they only move event time forward.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from producer import metrics
from producer.clock import EventClock, heartbeat_time

log = logging.getLogger(__name__)


class Heartbeats:
    """The heartbeat thread. ``send(partition, time_ms)`` writes one heartbeat record;
    ``serve()`` runs first on every beat (delivery reports while the stream is quiet)."""

    def __init__(
        self,
        clock: EventClock,
        partitions: int,
        interval: float,
        max_future_skew_seconds: float,
        send: Callable[[int, int], None],
        serve: Callable[[], None],
        stop: threading.Event,
    ) -> None:
        self._clock = clock
        self._partitions = partitions
        self._interval = interval
        self._skew = max_future_skew_seconds
        self._send = send
        self._serve = serve
        self._stop = stop
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        last_ts = 0
        while not self._stop.wait(self._interval):
            self._serve()
            now_ms = self._clock.now_ms()
            if now_ms is None:
                continue
            last_ts = heartbeat_time(last_ts, now_ms, int(time.time() * 1000), self._skew)
            try:
                for partition in range(self._partitions):
                    self._send(partition, last_ts)
                metrics.HEARTBEATS.inc(self._partitions)
            except BufferError:
                log.debug("producer queue full: heartbeat skipped")
            except Exception:  # keep beating whatever one send did
                log.exception("heartbeat failed")
