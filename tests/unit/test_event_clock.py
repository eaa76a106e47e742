"""The producer's event-time clock: what the heartbeats may claim about time passing."""

from __future__ import annotations

import time

from producer.clock import EventClock


def test_the_clock_says_nothing_before_the_first_event_or_while_disconnected():
    clock = EventClock()
    assert clock.now_ms() is None
    clock.set_live(True)
    assert clock.now_ms() is None  # no event seen yet
    clock.observe(1_000_000)
    clock.set_live(False)
    assert clock.now_ms() is None


def test_while_connected_the_newest_event_time_advances_with_wall_time():
    clock = EventClock()
    clock.set_live(True)
    clock.observe(1_000_000)
    clock.observe(999_000)  # older events never move it back
    time.sleep(0.05)
    now = clock.now_ms()
    assert now is not None and 1_000_040 <= now < 1_010_000


def test_while_the_reader_waits_for_kafka_no_time_passes():
    """Events queue up unread while Kafka is down; a heartbeat must not overtake them."""
    clock = EventClock()
    clock.set_live(True)
    clock.observe(1_000_000)
    clock.hold(True)
    assert clock.now_ms() is None
    time.sleep(0.05)
    clock.hold(False)
    now = clock.now_ms()
    assert now is not None and now < 1_000_040  # the held time is not counted


def test_a_silent_connection_moves_the_clock_at_most_max_ahead_past_the_newest_event():
    """A stall looks like quiet; the events behind it must not be overtaken by more than
    the grace the processor gives them."""
    clock = EventClock(max_ahead_ms=30)
    clock.set_live(True)
    clock.observe(1_000_000)
    time.sleep(0.08)
    assert clock.now_ms() == 1_000_030
    clock.observe(1_000_100)
    now = clock.now_ms()
    assert now is not None and 1_000_100 <= now <= 1_000_130


def test_evidence_of_quiet_lets_the_clock_run_past_max_ahead_to_that_moment():
    """A keep-alive (or an empty reconnect) at some moment proves nothing was pending
    then: the clock may run to that moment, plus max_ahead for what may stall after."""
    clock = EventClock(max_ahead_ms=30)
    clock.set_live(True)
    clock.observe(1_000_000)
    time.sleep(0.2)
    assert clock.now_ms() == 1_000_030  # silence alone: stall guard
    clock.vouch(time.monotonic())  # ~200 ms after the newest event, nothing pending
    now = clock.now_ms()
    assert now is not None and 1_000_200 <= now <= 1_000_200 + 30 + 20
    time.sleep(0.2)
    later = clock.now_ms()
    assert later is not None and later <= 1_000_200 + 30 + 20  # no further without news


def test_evidence_from_before_the_newest_event_says_nothing_about_after_it():
    clock = EventClock(max_ahead_ms=30)
    clock.set_live(True)
    clock.vouch(time.monotonic())
    time.sleep(0.01)
    clock.observe(1_000_000)
    time.sleep(0.1)
    assert clock.now_ms() == 1_000_030


def test_evidence_of_quiet_does_not_run_the_clock_while_disconnected_or_held():
    clock = EventClock(max_ahead_ms=30)
    clock.set_live(True)
    clock.observe(1_000_000)
    time.sleep(0.1)
    clock.vouch(time.monotonic())
    clock.hold(True)
    assert clock.now_ms() is None
    clock.hold(False)
    clock.set_live(False)
    assert clock.now_ms() is None
