"""Breakdowns are counted exactly like the counts (issue #28).

In-process (`tests.support.inprocess`): the real pipeline and sink against a real Redis,
fed the bundled recording as the producer writes it (the facts in ``wp-facts``), through
a crash between the Redis write and the Kafka commit and a Redis that loses everything.
Every published breakdown is compared with a count made here from the recording with
the standard library alone (`json`, `datetime`), never with the code under test.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import redis
from prometheus_client import REGISTRY

from devtools.recordings import RECENTCHANGE, load_events
from devtools.truth import breakdown_row
from tests.support.inprocess import InProcessPipeline, OfflineGroup
from tests.support.names import Names
from wikipulse.events import Event, parse
from wikipulse.store.values import ALL_WIKIS, Breakdown

W, GRACE = 3_000, 1_000


@pytest.fixture
def start(tmp_path, redis_url) -> Iterator[Callable[..., InProcessPipeline]]:
    prefix, group = Names.fresh().prefix, OfflineGroup()
    started: list[InProcessPipeline] = []

    def new(**options: Any) -> InProcessPipeline:
        pipe = InProcessPipeline(
            tmp_path / str(len(started)), redis_url, prefix, W, GRACE, group=group, **options
        )
        if started:
            pipe._log = started[0]._log  # the same raw topic
        started.append(pipe)
        return pipe

    yield new
    for pipe in started:
        pipe.close()


def independent_count(payloads: list[bytes]) -> dict[tuple[int, str], Counter[str]]:
    """(window start, wiki or "" for all) -> what its events were, from the JSON alone
    (`devtools.truth.breakdown_row`)."""
    found: dict[tuple[int, str], Counter[str]] = {}
    for raw in payloads:
        obj = json.loads(raw)
        ms = int(datetime.fromisoformat(obj["meta"]["dt"]).timestamp() * 1000)
        for wiki in (obj["server_name"], ""):
            found.setdefault((ms - ms % W, wiki), Counter()).update(breakdown_row(obj))
    return found


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def as_counter(found: Breakdown) -> Counter[str]:
    row = Counter(count=found.count, bot=found.bot, human=found.human, **found.types)
    row.update(added=found.added, removed=found.removed)
    return +row  # zeros dropped, as in the independent count


def feed(pipe: InProcessPipeline, payloads: list[bytes]) -> None:
    """As the producer writes them: keyed by wiki, stamped, the verdict and facts."""
    for raw in payloads:
        event = parse(raw)
        assert isinstance(event, Event)
        partition = zlib.crc32(event.server_name.encode()) % 2
        pipe.event(
            event.server_name.encode(), event.event_id, event.time_ms, partition, event.facts
        )


def test_the_recording_s_breakdowns_equal_an_independent_count_through_a_crash_and_a_recount(
    start, redis_url
):
    payloads = load_events(RECENTCHANGE)
    first = parse(payloads[0])
    assert isinstance(first, Event)
    crashed = start()
    for partition in (0, 1):  # the producer marks the stream's start in every partition
        crashed.heartbeat(first.time_ms, partition)
    feed(crashed, payloads[:200])
    crashed.sink.flush()  # Redis has them; the Kafka commit never happened
    replayed = metric("wikipulse_processor_replayed_records_total")
    recounts = metric("wikipulse_processor_recounts_total")

    again = start()  # from the last committed offset (none): every record again
    again._checkpoint = {0: 0, 1: 0}
    again.read_again()
    again.commit_as_quix()
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{again.prefix}*"):  # Redis loses everything
        client.delete(key)
    feed(again, payloads[200:])
    again.commit_as_quix()  # refused, sought back to the log start, recounted
    last = max(e.time_ms for e in map(parse, payloads) if isinstance(e, Event))
    for partition in (0, 1):
        again.heartbeat(last + W + GRACE, partition)
    again.commit_as_quix()

    assert metric("wikipulse_processor_replayed_records_total") >= replayed + 200
    assert metric("wikipulse_processor_recounts_total") >= recounts + 1
    store = again.store
    starts = store.starts(100) + store.partial_starts(100)
    expected = independent_count(payloads)
    assert sorted(starts) == sorted({start for start, _ in expected}) and len(starts) == 4
    for start in starts:
        wikis = [w for s, w in expected if s == start]
        published = client.hgetall(store.keys.breakdown(start))
        assert {k.decode() for k in published} == set(wikis)  # every wiki, and all of them
        for wiki in wikis:
            found = Breakdown.decode(published[wiki.encode()])
            assert as_counter(found) == expected[start, wiki], (start, wiki)
        counts = store.counts([start])[start]
        assert sum(counts.values()) == Breakdown.decode(published[ALL_WIKIS.encode()]).count
