"""The window pipeline (`processor.pipeline.wire`) in-process: a real Quix
dataframe and the real sink writing to a real Redis, no Kafka. Each test feeds raw
records as the producer writes them, commits as Quix does, and reads what reached Redis
and the output topics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY
from quixstreams.sinks import SinkBackpressureError

from devtools.recordings import RECENTCHANGE, load_events
from tests.support.inprocess import DLQ, InProcessPipeline
from tests.support.names import Names
from wikipulse.events import HEARTBEAT_KEY, Event, Header, Kind, parse

BEAT = HEARTBEAT_KEY.encode()
EN, DE = b"en.wikipedia.org", b"de.wikipedia.org"


@pytest.fixture
def prefix() -> str:
    return Names.fresh().prefix


@pytest.fixture
def start(tmp_path, redis_url, prefix) -> Iterator[Callable[..., InProcessPipeline]]:
    """Starts a processor on the same Redis prefix; each start is a fresh replica."""
    started: list[InProcessPipeline] = []

    def new(**options: Any) -> InProcessPipeline:
        state = tmp_path / str(len(started))
        pipe = InProcessPipeline(
            state, redis_url, prefix, window_ms=30_000, grace_ms=5_000, **options
        )
        started.append(pipe)
        return pipe

    yield new
    for pipe in started:
        pipe.close()


@pytest.fixture
def pipeline(start: Callable[[], InProcessPipeline]) -> InProcessPipeline:
    return start()


def event(pipe: InProcessPipeline, wiki: bytes, event_id: str, at: int, partition=0) -> None:
    """An event as the producer writes it: keyed by wiki, stamped, with its verdict."""
    pipe.event(wiki, event_id, at, partition)


def heartbeat(pipe: InProcessPipeline, at: int, partition=0) -> None:
    pipe.feed(b"", BEAT, at, [(Header.KIND, Kind.HEARTBEAT)], partition)


def processed(verdict: str) -> float:
    value = REGISTRY.get_sample_value("wikipulse_processor_records_total", {"verdict": verdict})
    return value or 0.0


def replayed() -> float:
    return REGISTRY.get_sample_value("wikipulse_processor_replayed_records_total") or 0.0


def test_the_sink_is_where_quix_flushes_before_every_commit(pipeline):
    """Quix Streams 3.28 flushes, before it commits, the sinks its sink manager holds
    (`Checkpoint.commit`); `wire` registers the window sink there, once."""
    assert pipeline.context.sink_manager.sinks == [pipeline.sink]


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
    assert pipeline.counts() == {(0, "en.wikipedia.org"): 1, (0, "de.wikipedia.org"): 1}
    closed = pipeline.store.client.hgetall(pipeline.store.keys.source(pipeline.source).closed)
    assert closed == {b"0": b"30000"}  # progress, never a count


def test_every_event_record_counts_once_copies_are_the_producer_s_to_drop(pipeline):
    event(pipeline, EN, "same", 1_000)
    event(pipeline, EN, "other", 1_500)
    event(pipeline, EN, "same", 1_000)  # another writer's copy: the raw topic has it twice
    heartbeat(pipeline, 35_000)
    assert pipeline.counts() == {(0, "en.wikipedia.org"): 3}


def test_a_window_open_across_commits_sums_every_commit_s_counts(pipeline):
    event(pipeline, EN, "a", 1_000)
    pipeline.commit()
    event(pipeline, EN, "b", 2_000)
    event(pipeline, DE, "c", 3_000)
    pipeline.commit()
    assert pipeline.counts() == {}  # still open: nothing final yet
    event(pipeline, EN, "d", 29_000)
    heartbeat(pipeline, 35_000)
    assert pipeline.counts() == {(0, "en.wikipedia.org"): 3, (0, "de.wikipedia.org"): 1}


def test_records_read_again_after_a_crash_before_the_commit_count_once(start):
    """Quix writes Redis, then commits offsets; a crash in between makes the new
    replica read the records since the last commit again."""
    crashed = start()
    for i in range(3):
        event(crashed, EN, f"a{i}", 1_000 + i)
    crashed.commit()  # Redis has them; the Kafka commit never happened
    before = replayed()
    again = start()  # starts from the last committed offset: the same three records
    for i in range(3):
        event(again, EN, f"a{i}", 1_000 + i)
    event(again, EN, "new", 2_000)
    heartbeat(again, 35_000)
    assert again.counts() == {(0, "en.wikipedia.org"): 4}
    assert replayed() == before + 3


def test_a_replica_that_lost_the_partition_is_refused_and_re_reads(start):
    old, new = start(), start()
    event(old, EN, "a", 1_000)
    old.commit()  # both now start from offset 1
    event(new, EN, "x", 0)  # offset 0 again for `new`: its first record was counted
    event(new, EN, "b", 2_000)
    event(old, EN, "b", 2_000)  # the same record, read by the replica that lost it
    new.commit()
    with pytest.raises(SinkBackpressureError):
        old.commit()  # refused: Quix seeks back to the last commit
    heartbeat(new, 35_000)
    assert new.counts() == {(0, "en.wikipedia.org"): 2}


def test_the_partition_clock_survives_a_restart(start):
    first = start()
    event(first, EN, "a", 1_000)
    heartbeat(first, 35_000)  # window 0 is final
    first.commit()
    before = processed("late")
    second = start()
    for _ in range(2):  # offsets 0 and 1 were counted by the first replica
        heartbeat(second, 0)
    event(second, EN, "b", 2_000)  # its window closed before the restart: late
    heartbeat(second, 70_000)
    assert second.counts() == {(0, "en.wikipedia.org"): 1}
    assert processed("late") == before + 1


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
    assert pipeline.counts() == {(0, "en.wikipedia.org"): 1}
    assert processed("late") == before + 1


def test_invalid_records_go_to_the_dead_letter_topic_byte_for_byte_with_a_reason(pipeline):
    pipeline.feed(b"\xff not json", b"\x00unkeyed", 1_000)
    pipeline.feed(b'{"server_name": 7}', b"\x00unkeyed", 1_000)
    heartbeat(pipeline, 35_000)
    pipeline.commit()  # dead letters are written with the checkpoint
    dead = [r for r in pipeline.produced if r.topic == DLQ]
    assert [r.value for r in dead] == [b"\xff not json", b'{"server_name": 7}']
    assert all(dict(r.headers)[Header.REASON] for r in dead)
    assert pipeline.counts() == {}


def test_an_event_keyed_by_something_else_counts_where_it_is_under_its_wiki(start):
    """Hole 2 of #25: another tool's record keyed by something else than its wiki used
    to be re-keyed back into the raw topic; Quix's murmur2 partitioner put it in another
    partition than the producer's, the wiki was finalized by two partitions, and the
    last one overwrote the other (10 published instead of 13). Now it counts in its own
    partition and partitions add up in the window."""
    pipe = start()
    raw = load_events(RECENTCHANGE)[0]
    parsed = parse(raw)
    assert isinstance(parsed, Event)
    wiki, at = parsed.server_name.encode(), parsed.time_ms
    for partition in (0, 1):  # the stream began a minute earlier: its first window is partial
        heartbeat(pipe, at - 60_000, partition=partition)
    for i in range(10):
        event(pipe, wiki, f"p0-{i}", at, partition=0)
    for _ in range(3):
        pipe.feed(raw, b"some-other-key", 123, partition=1)  # keyed by another tool
    for partition in (0, 1):
        heartbeat(pipe, at + 60_000, partition=partition)
    pipe.commit()
    window = at - at % 30_000
    assert pipe.store.leaderboard(window, 10) is not None
    assert pipe.counts()[window, parsed.server_name] == 13
    assert pipe.produced == []  # nothing is written back to the raw topic


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
