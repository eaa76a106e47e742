"""A first start reads history with ``since``; every later start resumes by id.

The replay server holds two minutes of past events (Wikimedia keeps days) before the
producer first connects; windows are 3 s, so the history is 40 windows.
"""

from __future__ import annotations

import time

from devtools.observe import wait_for
from devtools.recordings import RECENTCHANGE, load_events
from devtools.replay import since_offset
from devtools.truth import truth
from tests.support.pipeline import assert_index_matches_truth
from tests.support.streams import live_stream, play_async

HISTORY_SECONDS, HISTORY_RATE = 120, 25.0


def test_a_first_start_backfills_history_and_a_restart_never_counts_it_twice(
    pipeline, replay, redis_client
):
    replay.fill_history(load_events(RECENTCHANGE), HISTORY_SECONDS, HISTORY_RATE)
    history = list(replay.log)
    started = time.monotonic()
    producer = pipeline.producer(BACKFILL="90s")
    pipeline.processor()
    wait_for(lambda: replay.connections, 30, "the producer to connect")
    first = replay.connections[0]
    assert first.last_event_id is None and first.since is not None  # no id: history
    asked = int(first.since)
    assert abs(asked - (time.time() * 1000 - 90_000)) < 30_000  # BACKFILL=90s back
    assert first.offset == since_offset(history, asked)[0]
    assert first.offset is not None and 0 < first.offset < len(history)
    backfilled = history[first.offset :]

    expected = truth(backfilled, pipeline.window_ms)
    complete = sorted(expected)[:-1]  # the newest may still be open
    assert len(complete) >= 25
    assert_index_matches_truth(pipeline, redis_client, {s: expected[s] for s in complete})
    took = time.monotonic() - started
    print(f"\nbackfill: {len(backfilled)} events, {len(complete)} windows in {took:.1f} s")
    assert "backfilling from" in producer.output()

    # a restart resumes after what Kafka holds, by id, never with since again
    producer.stop()
    rate, start = 50.0, time.time()
    live = live_stream(300, rate, start, first=10_000)
    play_async(replay, live, rate).join()
    pipeline.producer(name="producer-2", BACKFILL="90s")
    wait_for(lambda: len(replay.connections) >= 2, 30, "the producer to reconnect")
    again = replay.connections[-1]
    assert again.last_event_id is not None and again.since is None
    expected = truth([*backfilled, *live], pipeline.window_ms)
    assert_index_matches_truth(pipeline, redis_client, expected)  # nothing counted twice


def test_history_older_than_the_server_has_starts_at_its_oldest_and_says_so(
    pipeline, replay, redis_client
):
    replay.fill_history(load_events(RECENTCHANGE), 30, HISTORY_RATE)
    history = list(replay.log)
    producer = pipeline.producer(BACKFILL="1h")
    pipeline.processor()
    wait_for(lambda: replay.connections, 30, "the producer to connect")
    assert replay.connections[0].offset == 0
    expected = truth(history, pipeline.window_ms)
    complete = sorted(expected)[:-1]
    assert_index_matches_truth(pipeline, redis_client, {s: expected[s] for s in complete})
    warnings = [line for line in producer.output().splitlines() if "history starts at" in line]
    assert len(warnings) == 1, producer.output()
