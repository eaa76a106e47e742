"""What counts: the shared event contract (wikipulse.events.parse)."""

import json

import pytest

from devtools.recordings import DATA, load_events
from wikipulse.events import Canary, Event, Invalid, parse


def event(**fields):
    base = {
        "meta": {"id": "abc", "dt": "2026-06-20T15:49:48.988Z", "domain": "en.wikipedia.org"},
        "server_name": "en.wikipedia.org",
        "timestamp": 1781970587,
    }
    base.update(fields)
    return json.dumps(base).encode()


def test_a_real_event_counts_at_meta_dt_with_meta_id():
    assert parse(event()) == Event("en.wikipedia.org", 1781970588988, "abc")


def test_every_recorded_event_of_both_shapes_is_countable():
    for name in ("recentchange-2026-06-20.sse", "recentchange-wikidata-2018.jsonl"):
        verdicts = [parse(p) for p in load_events(DATA / name)]
        assert verdicts and all(isinstance(v, Event) for v in verdicts), name
    old = parse(load_events(DATA / "recentchange-wikidata-2018.jsonl")[0])
    assert isinstance(old, Event) and old.time_ms == 1520439377000


def test_timestamp_seconds_is_the_fallback_for_missing_meta_dt():
    data = json.loads(event())
    del data["meta"]["dt"]
    assert parse(json.dumps(data).encode()) == Event("en.wikipedia.org", 1781970587000, "abc")


def test_canaries_never_count_even_without_server_name():
    data = json.loads(event(meta={"domain": "canary", "dt": "2026-06-20T15:49:48Z"}))
    del data["server_name"]
    assert isinstance(parse(json.dumps(data).encode()), Canary)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"[" * 2000 + b"]" * 2000, "not JSON"),
        (event(server_name=None), "server_name missing"),
        (event(server_name=42), "server_name is int"),
        (event(server_name=""), "server_name is empty"),
        (event(server_name="a\nb"), "control characters"),
        (event(server_name="x" * 300), "longer than"),
        (event(meta={"id": "x", "dt": "yesterday"}), "not ISO 8601"),
        (event(meta={"id": "x", "dt": 5}), "meta.dt is int"),
        (event(meta={"id": "x"}, timestamp="soon"), "no event time"),
        (event(meta={"id": "x"}, timestamp=float("nan")), "not JSON"),
        (event(meta={"id": "x"}, timestamp=True), "no event time"),
        (event(meta={"id": "x", "dt": "1970-01-01T00:00:00Z"}), "out of range"),
    ],
)
def test_unusable_payloads_are_invalid_with_a_reason(payload, reason):
    verdict = parse(payload)
    assert isinstance(verdict, Invalid) and reason in verdict.reason


def test_html_in_server_name_counts_as_text():
    assert parse(event(server_name="<b>x</b>")).server_name == "<b>x</b>"


def test_events_without_meta_id_dedup_on_their_exact_bytes():
    data = json.loads(event())
    del data["meta"]["id"]
    raw = json.dumps(data).encode()
    assert parse(raw).event_id == parse(raw).event_id != parse(raw + b" ").event_id
