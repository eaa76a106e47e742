"""End to end: replay server -> producer -> Kafka -> processor replicas -> Redis.

Every window in the index must equal an independent count of the same events, through
canaries, duplicates, malformed records, a quiet tail and a replica killed mid-stream.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from devtools.observe import (
    indexed_windows,
    metric,
    partial_windows,
    read_topic,
    wait_for,
    window_counts,
)
from devtools.truth import truth
from tests.support.pipeline import Pipeline, assert_index_matches_truth
from tests.support.streams import MALFORMED, live_stream, play_async, with_noise
from wikipulse.events import Header


def test_counts_per_window_equal_an_independent_count_and_bad_records_are_dead_lettered(
    pipeline, replay, redis_client
):
    pipeline.producer()
    wait_for(lambda: replay.connections, 30, "the producer to connect")
    pipeline.processor()
    rate, start = 150.0, time.time()
    payloads = with_noise(live_stream(900, rate, start), start, rate)
    play_async(replay, payloads, rate).join()

    expected = truth(replay.log, pipeline.window_ms)
    assert sum(sum(c.values()) for c in expected.values()) == 900
    # the stream is now quiet: heartbeats alone must close the last window
    assert_index_matches_truth(pipeline, redis_client, expected)

    dead = wait_for(
        lambda: (
            len(d := read_topic(pipeline.services.kafka, f"{pipeline.names.topic}.dlq"))
            >= sum(1 for p in payloads if p in MALFORMED)
            and d
        ),
        30,
        "dead letters",
    )
    reasons = {m.value(): dict(m.headers())[Header.REASON].decode() for m in dead}
    assert set(reasons) == {p for p in payloads if p in MALFORMED}
    assert reasons[b"{not json"].startswith("not JSON")
    assert reasons[b"[1, 2, 3]"] == "not a JSON object but list"


def test_three_replicas_and_a_sigkill_index_only_exact_windows(pipeline, replay, redis_client):
    pipeline.producer()
    wait_for(lambda: replay.connections, 30, "the producer to connect")
    replicas = [pipeline.processor(i) for i in range(3)]
    rate, start = 100.0, time.time()
    payloads = with_noise(live_stream(2000, rate, start), start, rate)
    first_seen: dict[int, Counter[str]] = {}
    watching = threading.Event()

    def watch_index() -> None:  # what a reader sees the moment a window is indexed
        while not watching.is_set():
            for window in indexed_windows(redis_client, pipeline.names.prefix):
                if window not in first_seen:
                    first_seen[window] = window_counts(redis_client, pipeline.names.prefix, window)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_index, daemon=True)
    watcher.start()
    player = play_async(replay, payloads, rate)
    time.sleep(7)
    replicas[1].kill()
    time.sleep(3)
    pipeline.processor(1)
    player.join()

    expected = truth(replay.log, pipeline.window_ms)
    assert_index_matches_truth(pipeline, redis_client, expected, timeout=120)
    time.sleep(0.5)
    watching.set()
    watcher.join()
    leading = set(partial_windows(redis_client, pipeline.names.prefix))  # the stream's first
    assert set(expected) - leading <= set(first_seen)
    for window, counts in first_seen.items():
        assert counts == expected.get(window), f"window {window} was indexed incomplete"


def test_a_redis_outage_pauses_the_processor_and_loses_nothing(services, names, replay, tmp_path):
    import dataclasses
    import subprocess

    import redis

    from devtools.servers import free_port

    port, data = free_port(), tmp_path / "redis"
    data.mkdir()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)]
    command += ["--appendonly", "yes", "--save", ""]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    own = dataclasses.replace(services, redis_url=f"redis://127.0.0.1:{port}/0")
    client = redis.Redis(port=port)
    wait_for(lambda: _pings(client), 10, "the private redis")
    pipeline = Pipeline(own, names, tmp_path, sse_url=replay.url)
    try:
        pipeline.producer()
        wait_for(lambda: replay.connections, 30, "the producer to connect")
        processor = pipeline.processor(METRICS_PORT=str(free_port()))
        rate, start = 100.0, time.time()
        player = play_async(replay, live_stream(1500, rate, start), rate)
        time.sleep(5)
        server.terminate()
        server.wait(10)
        time.sleep(8)  # windows close meanwhile; the sink must hold them back
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        player.join()
        expected = truth(replay.log, pipeline.window_ms)
        assert_index_matches_truth(pipeline, client, expected)
        assert processor.alive
        assert "redis unavailable" in processor.output()
        # both are exported at 0 from start-up: only their values prove anything
        assert metric(processor, "wikipulse_processor_redis_backpressure_total") > 0
        counted = metric(processor, "wikipulse_processor_records_total", 'verdict="event"')
        assert counted >= sum(sum(c.values()) for c in expected.values())
    finally:
        pipeline.stop_all()
        server.terminate()
        server.wait(10)


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False
