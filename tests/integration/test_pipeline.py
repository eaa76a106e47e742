"""End to end: replay server -> producer -> Kafka -> processor replicas -> Redis.

Every window in the index must equal an independent count of the same events, through
canaries, duplicates, malformed records, a quiet tail and a replica killed mid-stream.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import httpx

from tests.conftest import DATA
from tests.pipeline import (
    Pipeline,
    indexed_windows,
    read_topic,
    truth,
    wait_for,
    window_counts,
)
from wikipulse.events import Header
from wikipulse.replay import ReplayServer, load_events, restamp

RECORDED = load_events(DATA / "recentchange-2026-06-20.sse")


def live_stream(count: int, rate: float, start: float) -> list[bytes]:
    """``count`` recorded events stamped as if they happen from ``start`` at ``rate``/s."""
    out = []
    for i in range(count):
        when = datetime.fromtimestamp(start + i / rate, UTC)
        out.append(restamp(RECORDED[i % len(RECORDED)], when, cycle=i // len(RECORDED)))
    return out


def canary(when: float) -> bytes:
    dt = datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"meta": {"domain": "canary", "dt": dt, "id": str(uuid.uuid4())}}).encode()


MALFORMED = [
    b"{not json",
    b"\xff\xfe not utf-8",
    b"[1, 2, 3]",
    b'{"meta": {"dt": "2026-01-01T00:00:00Z"}, "server_name": ""}',
    b'{"meta": {"dt": "2026-01-01T00:00:00Z"}, "server_name": "a\\u0007b"}',
]


def with_noise(events: list[bytes], start: float, rate: float) -> list[bytes]:
    """Interleave duplicates, canaries and malformed records into a live stream."""
    out = []
    for i, data in enumerate(events):
        out.append(data)
        if i % 40 == 7:
            out.append(data)  # the same event again (same meta.id)
        if i % 97 == 11:
            out.append(canary(start + i / rate))
        if i % 150 == 20:
            out.append(MALFORMED[(i // 150) % len(MALFORMED)])
    return out


def play_async(replay: ReplayServer, payloads: list[bytes], rate: float) -> threading.Thread:
    thread = threading.Thread(target=replay.play, args=(payloads, rate, False), daemon=True)
    thread.start()
    return thread


def assert_index_matches_truth(pipeline: Pipeline, client, expected, timeout: float = 90):
    prefix = pipeline.names.prefix
    wanted = sorted(expected)
    wait_for(
        lambda: set(wanted) <= set(indexed_windows(client, prefix)),
        timeout,
        lambda: (
            f"windows {wanted} in the index, have {indexed_windows(client, prefix)}\n"
            + pipeline.logs()
        ),
    )
    for start in wanted:
        assert window_counts(client, prefix, start) == expected[start], start


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
    assert set(expected) <= set(first_seen)
    for window, counts in first_seen.items():
        assert counts == expected.get(window), f"window {window} was indexed incomplete"


def test_a_redis_outage_pauses_the_processor_and_loses_nothing(services, names, replay, tmp_path):
    import dataclasses
    import subprocess

    import redis

    from tests.services import free_port

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
        port_metrics = processor.env["METRICS_PORT"]
        body = httpx.get(f"http://127.0.0.1:{port_metrics}/metrics").text
        assert "wikipulse_processor_redis_backpressure_total" in body
        assert 'wikipulse_processor_records_total{verdict="event"}' in body
    finally:
        pipeline.stop_all()
        server.terminate()
        server.wait(10)


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False
