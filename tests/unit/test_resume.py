"""Resume points: never past an unacknowledged event, never further back than needed."""

import pytest
from pydantic import ValidationError

from producer.resume import (
    Bookkeeping,
    InFlight,
    ResumePoint,
    backfill_since,
    bookkeeping_headers,
    read_bookkeeping,
    resume_point,
)
from producer.settings import ProducerSettings


def test_the_acked_point_advances_only_over_a_gap_free_run():
    flight = InFlight(ResumePoint(0, None), 1)
    seqs = [flight.sent(f"id{i}") for i in range(1, 5)]
    flight.acked(seqs[1])
    flight.acked(seqs[2])
    assert flight.acked_point == ResumePoint(0, None)  # seq 1 still unacked
    flight.acked(seqs[0])
    assert flight.acked_point == ResumePoint(3, "id3")
    assert len(flight) == 1


def test_a_failed_delivery_freezes_the_point_and_rewind_resets():
    flight = InFlight(ResumePoint(10, "a"), 11)
    s1, s2 = flight.sent("b"), flight.sent("c")
    flight.failed_delivery(s1)
    flight.acked(s2)
    assert flight.failed and flight.acked_point == ResumePoint(10, "a")
    assert flight.rewind() == ResumePoint(10, "a")
    assert len(flight) == 0 and not flight.failed
    assert flight.sent("b") == 13  # sequence numbers are never reused


def tail(seq, acked_seq=None, sse=None):
    return Bookkeeping(seq, sse or f"id{seq}", acked_seq, f"id{acked_seq}" if acked_seq else None)


def test_recovery_extends_the_newest_acked_point_over_consecutive_records():
    tails = [tail(5, 3), tail(6, 4), tail(7, 4), tail(9, 5)]  # 8 never reached Kafka
    recovered = resume_point(tails)
    assert recovered.point == ResumePoint(7, "id7")
    assert recovered.next_seq == 10


def test_recovery_returns_the_ids_of_the_events_in_the_tails_in_sequence_order():
    tails = [
        Bookkeeping(7, "s7", 6, "s6", "id-7"),
        Bookkeeping(5, "s5", 4, "s4", "id-5"),
        Bookkeeping(6, "s6", 5, "s5", None),  # a canary or an invalid record: no id
    ]
    assert resume_point(tails).event_ids == ("id-5", "id-7")


def test_recovery_of_an_empty_topic_starts_live():
    recovered = resume_point([])
    assert recovered.point is None and recovered.next_seq == 1


def test_recovery_after_a_clean_run_resumes_after_the_last_event():
    tails = [tail(i, i - 1) for i in range(1, 50)]
    assert resume_point(tails).point == ResumePoint(49, "id49")


def test_bookkeeping_headers_read_back_as_written():
    headers = bookkeeping_headers(42, '[{"offset":7}]', ResumePoint(40, '[{"offset":5}]'))
    assert read_bookkeeping(headers) == Bookkeeping(42, '[{"offset":7}]', 40, '[{"offset":5}]')
    first = bookkeeping_headers(1, None, ResumePoint(0, None))
    assert read_bookkeeping(first) == Bookkeeping(1, None, 0, None)


def test_bookkeeping_names_the_event_of_its_record():
    headers = [*bookkeeping_headers(3, "s3", ResumePoint(2, "s2")), ("wp-event-id", b"m-3")]
    assert read_bookkeeping(headers) == Bookkeeping(3, "s3", 2, "s2", "m-3")


def test_records_without_bookkeeping_or_with_garbage_are_skipped():
    assert read_bookkeeping([("wp-kind", b"heartbeat")]) is None
    assert read_bookkeeping([("wp-seq", b"not a number")]) is None


NOW = 1_781_913_600_000  # 2026-06-20T00:00:00Z


@pytest.mark.parametrize(
    ("setting", "since"),
    [
        ("0", None),
        ("", None),
        ("1h", NOW - 3_600_000),
        ("90m", NOW - 5_400_000),
        ("1.5d", NOW - 129_600_000),
        ("2026-06-19T23:00:00Z", NOW - 3_600_000),
        ("1781910000000", NOW - 3_600_000),
    ],
)
def test_backfill_is_a_duration_a_time_or_off(setting, since):
    assert backfill_since(setting, NOW) == since


@pytest.mark.parametrize("setting", ["3600", "an hour", "1w", "2026-06-21T00:00:00Z"])
def test_backfill_refuses_what_it_cannot_mean(setting):
    with pytest.raises(ValueError, match="BACKFILL"):
        backfill_since(setting, NOW)


def test_the_ids_remembered_must_outlast_a_re_read_of_the_in_flight_events(monkeypatch):
    monkeypatch.setenv("MAX_IN_FLIGHT", "2000")
    monkeypatch.setenv("DEDUP_IDS", "3999")
    with pytest.raises(ValidationError, match="DEDUP_IDS=3999 must be at least twice"):
        ProducerSettings()
    monkeypatch.setenv("DEDUP_IDS", "4000")
    assert ProducerSettings().dedup_ids == 4000


def test_a_bad_backfill_stops_the_producer_at_configuration(monkeypatch):
    monkeypatch.setenv("BACKFILL", "an hour")
    with pytest.raises(ValidationError, match="BACKFILL"):
        ProducerSettings()
