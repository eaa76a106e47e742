"""What counts: the shared event contract (wikipulse.events.parse)."""

import json

import pytest

from devtools.recordings import DATA, load_events
from wikipulse.events import CHANGE_TYPES, Canary, Event, Invalid, facts_of, parse, read_facts


def event(**fields):
    base = {
        "meta": {"id": "abc", "dt": "2026-06-20T15:49:48.988Z", "domain": "en.wikipedia.org"},
        "server_name": "en.wikipedia.org",
        "timestamp": 1781970587,
    }
    base.update(fields)
    return json.dumps(base).encode()


def test_a_real_event_counts_at_meta_dt_with_meta_id():
    assert parse(event()) == Event("en.wikipedia.org", 1781970588988, "abc", b"oh")


def test_every_recorded_event_of_both_shapes_is_countable():
    for name in ("recentchange-2026-06-20.sse", "recentchange-wikidata-2018.jsonl"):
        verdicts = [parse(p) for p in load_events(DATA / name)]
        assert verdicts and all(isinstance(v, Event) for v in verdicts), name
    old = parse(load_events(DATA / "recentchange-wikidata-2018.jsonl")[0])
    assert isinstance(old, Event) and old.time_ms == 1520439377000


def test_timestamp_seconds_is_the_fallback_for_missing_meta_dt():
    data = json.loads(event())
    del data["meta"]["dt"]
    expected = Event("en.wikipedia.org", 1781970587000, "abc", b"oh")
    assert parse(json.dumps(data).encode()) == expected


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


# -- facts: what the breakdowns count of an event, in one small header ------------------


@pytest.mark.parametrize(
    ("fields", "facts", "read"),
    [
        (
            {"type": "edit", "bot": True, "length": {"old": 58723, "new": 57709}},
            b"eb-1014",
            (0, True, -1014),
        ),
        ({"type": "new", "bot": False, "length": {"new": 5230}}, b"nh5230", (1, False, 5230)),
        ({"type": "new", "length": {"old": None, "new": 12}}, b"nh12", (1, False, 12)),
        ({"type": "log", "bot": True}, b"lb", (2, True, None)),
        ({"type": "categorize", "bot": False, "length": {}}, b"ch", (3, False, None)),
        ({"type": "external"}, b"xh", (4, False, None)),
        ({"type": "something-new"}, b"oh", (5, False, None)),
        ({"type": ["edit"], "bot": "yes"}, b"oh", (5, False, None)),
        ({"type": "edit", "length": {"old": "1", "new": 2}}, b"eh", (0, False, None)),
        ({"type": "edit", "length": {"old": True, "new": 2}}, b"eh", (0, False, None)),
        ({"type": "edit", "length": {"old": 0, "new": 10**12}}, b"eh", (0, False, None)),
        ({"type": "edit", "length": {"old": -5, "new": 2}}, b"eh", (0, False, None)),
    ],
)
def test_an_event_s_facts_are_its_type_bot_or_human_and_size_change(fields, facts, read):
    parsed = parse(event(**fields))
    assert isinstance(parsed, Event) and parsed.facts == facts
    assert read_facts(facts) == read
    assert CHANGE_TYPES[read[0]] == (fields["type"] if facts[:1] != b"o" else "other")


def test_facts_another_tool_wrote_wrong_count_as_a_human_s_other_change_without_size():
    for value in (None, b"", b"?", b"zz", b"eb+", b"eb1x", b"eb" + b"9" * 40, b"\xff\xfe"):
        kind, _, delta = read_facts(value)
        assert delta is None, value
        assert kind == (0 if value and value[:1] == b"e" else len(CHANGE_TYPES) - 1), value


def test_every_recorded_event_has_facts_of_at_most_a_dozen_bytes():
    for raw in load_events(DATA / "recentchange-2026-06-20.sse"):
        parsed = parse(raw)
        assert isinstance(parsed, Event) and 2 <= len(parsed.facts) <= 12
        assert parsed.facts == facts_of(json.loads(raw))
