"""The window pipeline (`processor.windows.count_windows`) in-process: real Quix
dataframe and window state, no Kafka. Each test feeds raw records as the producer
writes them and reads what the sink and the output topics received."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from prometheus_client import REGISTRY

from devtools.recordings import RECENTCHANGE, load_events
from processor.windows import add, final_count
from tests.support.inprocess import DLQ, RAW, InProcessPipeline
from wikipulse.events import HEARTBEAT_KEY, Event, Header, Kind, parse

BEAT = HEARTBEAT_KEY.encode()
EN, DE = b"en.wikipedia.org", b"de.wikipedia.org"


@pytest.fixture
def pipeline(tmp_path) -> Iterator[InProcessPipeline]:
    pipe = InProcessPipeline(tmp_path, window_ms=30_000, grace_ms=5_000)
    yield pipe
    pipe.close()


def event(pipe: InProcessPipeline, wiki: bytes, event_id: str, at: int, partition=0) -> None:
    """An event as the producer writes it: keyed by wiki, stamped, with its verdict."""
    headers = [(Header.KIND, Kind.EVENT), (Header.EVENT_ID, event_id.encode())]
    pipe.feed(b"{}", wiki, at, headers, partition)


def heartbeat(pipe: InProcessPipeline, at: int, partition=0) -> None:
    pipe.feed(b"", BEAT, at, [(Header.KIND, Kind.HEARTBEAT)], partition)


def processed(verdict: str) -> float:
    value = REGISTRY.get_sample_value("wikipulse_processor_records_total", {"verdict": verdict})
    return value or 0.0


def test_each_wiki_counts_its_events_per_window(pipeline):
    for i, at in enumerate([1_000, 2_000, 29_999, 30_000]):
        event(pipeline, EN, f"en-{i}", at)
    event(pipeline, DE, "de-0", 5_000)
    heartbeat(pipeline, 65_000)
    assert pipeline.counts() == {
        (0, "en.wikipedia.org"): 3,
        (0, "de.wikipedia.org"): 1,
        (30_000, "en.wikipedia.org"): 1,
    }


def test_a_window_is_final_only_when_its_partition_passes_end_plus_grace(pipeline):
    event(pipeline, EN, "a", 1_000)
    heartbeat(pipeline, 34_999)
    assert pipeline.counts() == {}
    heartbeat(pipeline, 35_000, partition=1)  # another partition's time does not close it
    assert pipeline.counts() == {}
    heartbeat(pipeline, 35_000)
    assert pipeline.counts() == {(0, "en.wikipedia.org"): 1}


def test_a_heartbeat_closes_every_wiki_of_its_partition_and_reports_its_progress(pipeline):
    event(pipeline, EN, "a", 1_000)
    event(pipeline, DE, "b", 2_000)
    heartbeat(pipeline, 10_000)
    heartbeat(pipeline, 40_000)
    finals = pipeline.finals()
    assert {key for _, key, _ in finals} == {EN, DE, BEAT}
    beats = [result for _, key, result in finals if key == BEAT]
    assert beats == [{"start": 0, "end": 30_000, "value": 0}]  # progress, never a count


def test_every_event_record_counts_once_copies_are_the_producer_s_to_drop(pipeline):
    event(pipeline, EN, "same", 1_000)
    event(pipeline, EN, "other", 1_500)
    event(pipeline, EN, "same", 1_000)  # another writer's copy: the raw topic has it twice
    heartbeat(pipeline, 35_000)
    assert pipeline.counts() == {(0, "en.wikipedia.org"): 3}


def test_a_window_opened_by_the_older_distinct_count_carries_on_as_its_count():
    assert add([2, "\nid-1\nid-2\n"], 1) == 3
    assert final_count({"start": 0, "end": 30_000, "value": [2, "\nid-1\nid-2\n"]})["value"] == 2
    assert final_count({"start": 0, "end": 30_000, "value": 5})["value"] == 5


@pytest.mark.parametrize(
    "closed_by",
    [
        pytest.param(35_000, id="the-newest-closed-window"),  # Quix alone loses this one
        pytest.param(65_000, id="an-older-closed-window"),
    ],
)
def test_an_event_for_a_closed_window_is_late_not_counted_nor_lost(pipeline, closed_by):
    before = processed("late")
    event(pipeline, EN, "a", 1_000)
    heartbeat(pipeline, closed_by)
    event(pipeline, EN, "b", 2_000)  # its window is final already
    heartbeat(pipeline, closed_by - 30_000)  # a stale heartbeat: no event, not late
    heartbeat(pipeline, 200_000)
    finals = [result for _, key, result in pipeline.finals() if key == EN]
    assert finals == [{"start": 0, "end": 30_000, "value": 1}]
    assert processed("late") == before + 1


def test_invalid_records_go_to_the_dead_letter_topic_byte_for_byte_with_a_reason(pipeline):
    pipeline.feed(b"\xff not json", b"\x00unkeyed", 1_000)
    pipeline.feed(b'{"server_name": 7}', b"\x00unkeyed", 1_000)
    heartbeat(pipeline, 35_000)
    dead = [r for r in pipeline.produced if r.topic == DLQ]
    assert [r.value for r in dead] == [b"\xff not json", b'{"server_name": 7}']
    assert all(dict(r.headers)[Header.REASON] for r in dead)
    assert pipeline.counts() == {}


def test_an_event_keyed_by_something_else_is_rekeyed_by_its_wiki_at_its_own_time(pipeline):
    raw = load_events(RECENTCHANGE)[0]
    parsed = parse(raw)
    assert isinstance(parsed, Event)
    pipeline.feed(raw, b"some-other-key", 123)
    heartbeat(pipeline, parsed.time_ms + 60_000)
    assert pipeline.counts() == {}  # counted once it comes back under its own key
    [rekeyed] = [r for r in pipeline.produced if r.topic == RAW]
    assert (rekeyed.key, rekeyed.value) == (parsed.server_name.encode(), raw)
    assert rekeyed.timestamp == parsed.time_ms


def test_records_without_hints_count_like_hinted_ones_and_canaries_never(pipeline):
    recorded = [e for e in load_events(RECENTCHANGE)[:50] if isinstance(parse(e), Event)]
    for raw in recorded:
        parsed = parse(raw)
        assert isinstance(parsed, Event)
        pipeline.feed(raw, parsed.server_name.encode(), 0)  # another tool wrote it
    canary = orjson.dumps({"meta": {"domain": "canary", "dt": "2026-06-20T00:00:00Z"}})
    pipeline.feed(canary, b"\x00unkeyed", 0)
    newest = max(p.time_ms for p in map(parse, recorded) if isinstance(p, Event))
    heartbeat(pipeline, newest + 60_000)
    expected: dict[tuple[int, str], int] = {}
    for raw in recorded:
        parsed = parse(raw)
        assert isinstance(parsed, Event)
        window = (parsed.time_ms // 30_000 * 30_000, parsed.server_name)
        expected[window] = expected.get(window, 0) + 1
    assert pipeline.counts() == expected
    assert pipeline.produced == []
