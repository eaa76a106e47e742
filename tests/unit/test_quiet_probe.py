"""The quiet probe vouches only on evidence (issue #25, hole 4): for the moment the new
connection last delivered something, or of its request when it delivered nothing; never
across an outage since the newest event, and never while the reader is not waiting on
the socket."""

from __future__ import annotations

import time

from producer.clock import EventClock
from producer.probe import QuietProbe


def probe(clock: EventClock, *, outage: bool = False, waiting: bool = True) -> QuietProbe:
    return QuietProbe(clock, 1.0, lambda: waiting, requested_at=100.0, outage=outage)


def seen(time_ms: int = 1_000_000, max_ahead_ms: int = 1000) -> EventClock:
    clock = EventClock(max_ahead_ms=max_ahead_ms)
    clock.set_live(True)
    clock.observe(time_ms)
    return clock


def test_a_connection_silent_for_the_probe_time_proves_quiet_as_of_its_request():
    p = probe(seen())
    assert p.verdict(100.5) is None  # not yet
    assert p.verdict(101.0) == 100.0


def test_copies_delivered_move_the_proof_to_their_delivery_and_restart_the_wait():
    p = probe(seen())
    p.delivered(100.8)  # copies of events already read: nothing newer
    assert p.verdict(101.5) is None  # only 0.7 s of silence after the copies
    assert p.verdict(101.8) == 100.8  # quiet as of the copies, not of the request


def test_no_proof_across_an_outage_since_the_newest_event():
    p = probe(seen(), outage=True)
    assert p.verdict(1000.0) is None


def test_no_proof_while_the_reader_is_not_waiting_on_the_socket_or_after_news():
    assert probe(seen(), waiting=False).verdict(101.0) is None
    clock = seen()
    p = probe(clock)
    clock.observe(1_000_500)
    assert p.verdict(101.0) is None


def test_the_probe_thread_vouches_and_the_clock_runs_to_that_moment():
    clock = seen(max_ahead_ms=100)
    time.sleep(0.3)  # the connection ended; a reconnect is requested 0.3 s later
    p = QuietProbe(clock, 0.1, lambda: True, requested_at=time.monotonic(), outage=False)
    p.start()
    time.sleep(0.3)
    now = clock.now_ms()
    assert now is not None and now >= 1_000_000 + 300  # vouched: past max_ahead


def test_after_an_outage_the_probe_thread_never_vouches():
    clock = seen(max_ahead_ms=100)
    time.sleep(0.3)
    p = QuietProbe(clock, 0.05, lambda: True, requested_at=time.monotonic(), outage=True)
    p.start()
    time.sleep(0.3)
    p.cancel()
    now = clock.now_ms()
    assert now is not None and now <= 1_000_000 + 100  # the stall guard alone
