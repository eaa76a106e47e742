"""The processor's verdicts: hints when present, the same parse when not."""

from processor.records import Verdict, classify
from wikipulse.events import HEARTBEAT_KEY, Header, Kind

RAW = b'{"meta":{"id":"m1","dt":"2026-06-20T15:49:48Z"},"server_name":"de.wikipedia.org"}'


def test_hinted_events_are_judged_from_headers_without_parsing():
    headers = [(Header.KIND, Kind.EVENT), (Header.EVENT_ID, b"m1")]
    record = classify(b"garbage never parsed", b"de.wikipedia.org", 1234, headers)
    assert (record.verdict, record.event_id, record.time_ms) == (Verdict.EVENT, "m1", 1234)


def test_unhinted_records_are_parsed_and_take_their_time_from_meta_dt():
    record = classify(RAW, b"de.wikipedia.org", 1, None)
    assert record.verdict is Verdict.EVENT and record.time_ms == 1781970588000


def test_unhinted_records_keyed_otherwise_are_rekeyed():
    assert classify(RAW, b"whatever", 1, None).verdict is Verdict.REKEY


def test_heartbeats_need_both_header_and_key():
    hb = [(Header.KIND, Kind.HEARTBEAT)]
    assert classify(b"", HEARTBEAT_KEY.encode(), 5, hb).verdict is Verdict.HEARTBEAT
    assert classify(b"", b"en.wikipedia.org", 5, hb).verdict is Verdict.INVALID


def test_invalid_records_keep_the_producers_reason_or_get_one():
    headers = [(Header.KIND, Kind.INVALID), (Header.REASON, b"not JSON: x")]
    assert classify(b"{", b"k", 1, headers).reason == "not JSON: x"
    assert classify(None, None, 1, None).reason == "empty record (no value)"
    assert classify(b"{", None, 1, None).reason.startswith("not JSON")
