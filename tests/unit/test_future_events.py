"""Hole 1 of issue #25: an event dated in the future must not move event time.

One ``meta.dt`` a day ahead, trusted, moves the producer's clock (and with it every
heartbeat, on every partition) a day ahead: every later event is then late. So an event
dated more than ``MAX_FUTURE_SKEW_SECONDS`` past wall time is invalid, in the producer
before its clock sees it, and in the processor's `classify` for records of other tools
(and for hinted records whose timestamp is that far ahead).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from processor.records import REASON, TIME_MS, VERDICT, Verdict, classify
from producer import metrics
from producer.publisher import Publisher
from producer.resume import Recovered
from producer.settings import ProducerSettings
from producer.sse import SseEvent
from wikipulse.events import HEARTBEAT_KEY, Canary, Event, Header, Invalid, Kind, parse

DAY_MS = 86_400_000


def payload(time_ms: int, event_id: str, server_name: str = "en.wikipedia.org") -> bytes:
    dt = datetime.fromtimestamp(time_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"meta": {"id": event_id, "dt": dt}, "server_name": server_name, "timestamp": 1}
    ).encode()


class CapturingPublisher(Publisher):
    """A `Publisher` whose records are kept here instead of going to Kafka."""

    def __init__(self, settings: ProducerSettings) -> None:
        super().__init__(settings, threading.Event(), 6, Recovered(None, 1))
        self.records: list[dict[str, Any]] = []

    def _produce(self, **kwargs: Any) -> None:
        self.records.append(kwargs)


@pytest.fixture
def publisher(monkeypatch: pytest.MonkeyPatch) -> CapturingPublisher:
    monkeypatch.setenv("KAFKA_BROKER_ADDRESS", "127.0.0.1:1")  # never contacted
    monkeypatch.setenv("MAX_FUTURE_SKEW_SECONDS", "60")
    return CapturingPublisher(ProducerSettings())


def test_one_event_a_day_ahead_does_not_move_the_producers_clock(publisher):
    now_ms = int(time.time() * 1000)
    invalid_before = metrics.RECEIVED.labels("invalid")._value.get()
    publisher.publish(SseEvent("message", payload(now_ms + DAY_MS, "future"), "1"), now_ms)
    for i in range(3):  # normal events after it
        publisher.publish(SseEvent("message", payload(now_ms + i, f"e{i}"), str(i + 2)), now_ms)
    assert publisher.clock.newest_ms == now_ms + 2  # not a day ahead: later events count
    future, *rest = publisher.records
    starts = [r for r in rest if dict(r["headers"])[Header.KIND] == Kind.HEARTBEAT]
    normal = [r for r in rest if dict(r["headers"])[Header.KIND] != Kind.HEARTBEAT]
    # the stream's start is marked at its first believable event, not the future one
    assert [r["timestamp"] for r in starts] == [now_ms] * 6
    headers = dict(future["headers"])
    assert headers[Header.KIND] == Kind.INVALID  # dead-lettered, with the reason
    assert b"in the future" in headers[Header.REASON]
    assert b"MAX_FUTURE_SKEW_SECONDS" in headers[Header.REASON]
    assert future["timestamp"] == now_ms  # stamped when received, not a day ahead
    assert [dict(r["headers"])[Header.KIND] for r in normal] == [Kind.EVENT] * 3
    publisher.tally.flush()  # the reader does it once per chunk
    assert metrics.RECEIVED.labels("invalid")._value.get() == invalid_before + 1
    assert metrics.FUTURE_EVENTS._value.get() >= 1


def test_an_event_within_the_skew_still_counts(publisher):
    now_ms = int(time.time() * 1000)
    publisher.publish(SseEvent("message", payload(now_ms + 30_000, "soon"), "1"), now_ms)
    assert publisher.clock.newest_ms == now_ms + 30_000
    assert dict(publisher.records[-1]["headers"])[Header.KIND] == Kind.EVENT  # after the start


def test_parse_takes_the_bound_as_an_argument_and_stays_pure():
    now_ms = 1_781_970_588_000
    ahead = payload(now_ms + 61_000, "x")
    assert isinstance(parse(ahead), Event)  # no bound: no wall clock read
    verdict = parse(ahead, latest_ms=now_ms + 60_000)
    assert isinstance(verdict, Invalid) and "1 s later than wall time" in verdict.reason
    assert isinstance(parse(payload(now_ms + 60_000, "x"), latest_ms=now_ms + 60_000), Event)
    canary = json.dumps({"meta": {"domain": "canary", "dt": "2099-01-01T00:00:00Z"}}).encode()
    assert parse(canary, latest_ms=now_ms) == Canary(None)  # its time is not trusted


def test_classify_dead_letters_an_unhinted_record_dated_in_the_future():
    now_ms = int(time.time() * 1000)
    raw = payload(now_ms + DAY_MS, "f", "de.wikipedia.org")
    record = classify(raw, b"de.wikipedia.org", now_ms, None)
    assert record[VERDICT] == Verdict.INVALID and "in the future" in record[REASON]
    assert record[TIME_MS] == now_ms  # the record's own timestamp, not the payload's
    ok = classify(payload(now_ms - 1000, "o", "de.wikipedia.org"), b"de.wikipedia.org", 1, None)
    assert ok[VERDICT] == Verdict.EVENT


def test_classify_does_not_trust_a_hinted_timestamp_far_in_the_future():
    now_ms = int(time.time() * 1000)
    event = [(Header.KIND, Kind.EVENT), (Header.EVENT_ID, b"m1"), (Header.FACTS, b"eh")]
    record = classify(b"{}", b"de.wikipedia.org", now_ms + DAY_MS, event)
    assert record[VERDICT] == Verdict.INVALID and "in the future" in record[REASON]
    assert record[TIME_MS] <= now_ms + 1000
    beat = [(Header.KIND, Kind.HEARTBEAT)]
    hb = classify(b"", HEARTBEAT_KEY.encode(), now_ms + DAY_MS, beat)
    assert hb[VERDICT] == Verdict.INVALID
    assert classify(b"", HEARTBEAT_KEY.encode(), now_ms, beat)[VERDICT] == Verdict.HEARTBEAT
    assert classify(b"{}", b"de.wikipedia.org", now_ms + 1000, event)[VERDICT] == Verdict.EVENT


def test_heartbeats_never_claim_a_time_the_processor_would_not_believe():
    from producer.clock import heartbeat_time

    wall = 1_781_970_588_000
    assert heartbeat_time(0, wall + 1000, wall, 60) == wall + 1000  # the clock's
    # an event dated 59 s ahead, and the clock 5 s past it: capped at wall + skew
    assert heartbeat_time(0, wall + 64_000, wall, 60) == wall + 60_000
    assert heartbeat_time(wall + 2000, wall + 1000, wall, 60) == wall + 2000  # never back
    beat = [(Header.KIND, Kind.HEARTBEAT)]
    capped = heartbeat_time(0, wall + 64_000, wall, 60)
    assert classify(b"", HEARTBEAT_KEY.encode(), capped, beat, now_ms=wall)[VERDICT] == (
        Verdict.HEARTBEAT
    )
