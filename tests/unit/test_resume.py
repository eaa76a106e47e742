"""Resume points: never past an unacknowledged event, never further back than needed."""

from producer.resume import (
    Bookkeeping,
    InFlight,
    ResumePoint,
    bookkeeping_headers,
    read_bookkeeping,
    resume_point,
)


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


def test_records_without_bookkeeping_or_with_garbage_are_skipped():
    assert read_bookkeeping([("wp-kind", b"heartbeat")]) is None
    assert read_bookkeeping([("wp-seq", b"not a number")]) is None
