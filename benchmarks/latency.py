"""Window visibility: from a window's end to its key in Redis' index, live and quiet."""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path

import redis

from benchmarks.catchup import key_prefix
from devtools.processes import spawn
from devtools.recordings import DATA, load_events
from devtools.replay import ReplayServer
from wikipulse.store.keys import KeyLayout


def run_latency(
    kafka: str,
    redis_url: str,
    topic: str,
    workdir: Path,
    seconds: float,
    window_s: int,
    grace_s: int,
    rate: float = 100.0,
) -> dict[str, object]:
    prefix = key_prefix(topic, "latency")
    keys = KeyLayout(prefix)
    client = redis.Redis.from_url(redis_url)
    recorded = load_events(DATA / "recentchange-2026-06-20.sse")
    seen: dict[int, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            now_ms = time.time() * 1000
            members: list[bytes] = client.zrange(keys.complete, 0, -1)  # type: ignore[assignment]
            for member in members:
                seen.setdefault(int(member), now_ms)
            time.sleep(0.02)

    with ReplayServer() as replay:
        env = {
            **os.environ,
            "KAFKA_BROKER_ADDRESS": kafka,
            "RAW_TOPIC": topic,
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix,
            "CONSUMER_GROUP": "bench-latency",
            "SSE_URL": replay.url,
            "BACKFILL": "0",
            "WINDOW_SECONDS": str(window_s),
            "GRACE_SECONDS": str(grace_s),
            # let heartbeats close the last window once the stream goes quiet (the
            # default, GRACE_SECONDS, keeps it open until the next event; see README)
            "HEARTBEAT_MAX_AHEAD_SECONDS": str(window_s + grace_s + 1),
            "STATE_DIR": str(workdir / "state-latency"),
            "LOG_LEVEL": "WARNING",
        }
        procs = [
            spawn("processor", env, workdir / "latency-processor.log"),
            spawn("producer", env, workdir / "latency-producer.log"),
        ]
        watcher = threading.Thread(target=watch, daemon=True)
        try:
            while not replay.connections:
                time.sleep(0.05)
            time.sleep(5)  # the processor joins its group
            watcher.start()
            stream_stop = threading.Event()
            player = threading.Thread(
                target=replay.play,
                args=(recorded, rate, True),
                kwargs={"loop": True, "stop": stream_stop},
                daemon=True,
            )
            player.start()
            time.sleep(seconds)
            stream_stop.set()
            player.join()
            quiet_from = time.time() * 1000
            window_ms = window_s * 1000
            last_window = int(quiet_from) - int(quiet_from) % window_ms
            deadline = time.monotonic() + window_s + grace_s + 30
            while last_window not in seen and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)
    delays = {start: (at - (start + window_ms)) / 1000 for start, at in sorted(seen.items())}
    live = [d for s, d in delays.items() if s + window_ms <= quiet_from]
    quiet = [d for s, d in delays.items() if s + window_ms > quiet_from]
    return {
        "window_seconds": window_s,
        "grace_seconds": grace_s,
        "rate": rate,
        "live_windows": len(live),
        "live_median_s": round(statistics.median(live), 2) if live else None,
        "live_p99_s": round(sorted(live)[min(len(live) - 1, int(0.99 * len(live)))], 2)
        if live
        else None,
        "quiet_windows": len(quiet),
        "quiet_delay_s": [round(d, 2) for d in quiet],
    }
