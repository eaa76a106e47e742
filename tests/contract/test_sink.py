"""The processor's sink turns Quix's final window results into the Redis contract.

In-process, with the results Quix hands the sink (`SinkBatch`), against a real Redis:
what reaches Redis for counts, heartbeats and an unreachable server.
"""

from __future__ import annotations

import pytest
import redis
from quixstreams.sinks import SinkBackpressureError
from quixstreams.sinks.base.batch import SinkBatch

from processor.sink import RedisWindowSink
from tests.support.names import Names
from wikipulse.events import HEARTBEAT_KEY
from wikipulse.store import KeyLayout, WindowStore

WINDOW = 30_000
S0 = 1_767_225_600_000


def batch(partition: int, *results: tuple[bytes, int, int]) -> SinkBatch:
    """Final results as Quix delivers them: key, window start, count."""
    out = SinkBatch(topic="raw", partition=partition)
    for offset, (key, start, count) in enumerate(results):
        value = {"start": start, "end": start + WINDOW, "value": count}
        out.append(value=value, key=key, timestamp=start, headers=[], offset=offset)
    return out


def sink_for(url: str, prefix: str, partitions: int = 2) -> RedisWindowSink:
    sink = RedisWindowSink(
        url,
        prefix,
        window_ms=WINDOW,
        ttl_seconds=3600,
        partitions=partitions,
        backpressure_seconds=0.1,
    )
    sink.setup()
    return sink


def test_counts_land_per_wiki_and_heartbeats_only_move_the_closed_mark(redis_url):
    prefix = Names.fresh().prefix
    store = WindowStore(redis.Redis.from_url(redis_url), KeyLayout(prefix))
    sink = sink_for(redis_url, prefix)
    beat = HEARTBEAT_KEY.encode()
    sink.write(batch(0, (b"en.wikipedia.org", S0, 3), (beat, S0, 0), (beat, S0 + WINDOW, 0)))
    assert store.client.hgetall(store.keys.closed) == {b"0": str(S0 + 2 * WINDOW).encode()}
    assert store.latest() is None  # partition 1 has not finalized yet
    sink.write(batch(1, (beat, S0, 0)))
    board = store.leaderboard(S0, 10)
    assert board is not None and board.rows == [("en.wikipedia.org", 3)]
    assert store.history("\x00heartbeat", 1) == [(S0, 0)]  # never a member
    assert store.recorded() == (WINDOW, 2)


def test_an_unreachable_redis_pauses_the_partition_instead_of_losing_the_batch(redis_url):
    sink = sink_for("redis://127.0.0.1:1/0", Names.fresh().prefix)
    with pytest.raises(SinkBackpressureError):
        sink.write(batch(0, (b"en.wikipedia.org", S0, 3)))
