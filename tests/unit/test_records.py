"""The processor's verdicts: hints when present, the same parse when not."""

from processor.records import FACTS, RAW, REASON, VERDICT, Verdict, classify
from wikipulse.events import HEARTBEAT_KEY, Header, Kind

BODY = b'{"meta":{"id":"m1","dt":"2026-06-20T15:49:48Z"},"server_name":"de.wikipedia.org"}'


def test_hinted_events_are_judged_from_headers_without_parsing():
    headers = [(Header.KIND, Kind.EVENT), (Header.EVENT_ID, b"m1"), (Header.FACTS, b"eb-3")]
    record = classify(b"garbage never parsed", b"de.wikipedia.org", 1234, headers)
    assert record == (Verdict.EVENT, 1234, b"", "", b"eb-3")  # and no body to copy along


def test_an_older_producer_s_event_without_facts_is_parsed_for_them():
    headers = [(Header.KIND, Kind.EVENT), (Header.EVENT_ID, b"m1")]
    body = BODY.replace(b'"server_name"', b'"type":"log","bot":true,"server_name"')
    record = classify(body, b"de.wikipedia.org", 1781970588000, headers)
    assert record[VERDICT] == Verdict.EVENT and record[FACTS] == b"lb"


def test_a_hint_without_the_event_id_is_not_trusted():
    headers = [(Header.KIND, Kind.EVENT)]
    assert classify(b"garbage", b"de.wikipedia.org", 1234, headers)[VERDICT] == Verdict.INVALID


def test_unhinted_records_are_parsed_and_take_their_time_from_meta_dt():
    verdict, time_ms, *_ = classify(BODY, b"de.wikipedia.org", 1, None)
    assert (verdict, time_ms) == (Verdict.EVENT, 1781970588000)


def test_unhinted_records_keyed_otherwise_are_rekeyed():
    verdict, _, raw, _, facts = classify(BODY, b"whatever", 1, None)
    assert verdict == Verdict.REKEY and raw == BODY  # written back byte for byte
    assert facts == b"oh"  # counted in the breakdowns under its wiki, from the body


def test_heartbeats_need_both_header_and_key():
    hb = [(Header.KIND, Kind.HEARTBEAT)]
    assert classify(b"", HEARTBEAT_KEY.encode(), 5, hb)[VERDICT] == Verdict.HEARTBEAT
    assert classify(b"", b"en.wikipedia.org", 5, hb)[VERDICT] == Verdict.INVALID


def test_invalid_records_keep_the_producers_reason_or_get_one():
    headers = [(Header.KIND, Kind.INVALID), (Header.REASON, b"not JSON: x")]
    assert classify(b"{", b"k", 1, headers)[REASON] == "not JSON: x"
    assert classify(None, None, 1, None)[REASON] == "empty record (no value)"
    assert classify(b"{", None, 1, None)[REASON].startswith("not JSON")


def test_dead_letters_keep_their_exact_bytes_and_canaries_drop_theirs():
    assert classify(b"{", None, 1, None)[RAW] == b"{"
    canary = b'{"meta":{"domain":"canary","dt":"2026-06-20T15:49:48Z"}}'
    assert classify(canary, b"k", 1, None)[:2] == (Verdict.CANARY, 1781970588000)
    assert classify(canary, b"k", 1, None)[RAW] == b""
