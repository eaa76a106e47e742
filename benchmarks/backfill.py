"""The first minute: from a first start to a full hour of complete windows.

``python -m benchmarks.backfill [--rate 20] [--history 3600]`` starts the replay server
with an hour of history at ``rate`` events/s (Wikimedia runs at 20-100), then a producer
with the default ``BACKFILL=1h`` and one processor with the default 30 s windows, and
prints how long it takes until the index holds every window of that hour. It uses the
same servers as the tests (`devtools.servers`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from devtools.processes import spawn
from devtools.recordings import RECENTCHANGE, load_events
from devtools.replay import ReplayServer
from devtools.servers import provide
from wikipulse.store.keys import KeyLayout
from wikipulse.store.window_store import WindowStore

WINDOW_MS = 30_000


def run_backfill(
    kafka: str, redis_url: str, workdir: Path, seconds: int, rate: float
) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    prefix = f"bench:backfill:{suffix}:"
    client = redis.Redis.from_url(redis_url)
    with ReplayServer() as replay:
        events = replay.fill_history(load_events(RECENTCHANGE), seconds, rate)
        first_ms = int(time.time() * 1000) - seconds * 1000
        # every window that starts inside the hour and has ended by now
        wanted = set(
            range(
                first_ms - first_ms % WINDOW_MS + WINDOW_MS,
                first_ms + seconds * 1000 - WINDOW_MS,
                WINDOW_MS,
            )
        )
        env = {
            **os.environ,
            "KAFKA_BROKER_ADDRESS": kafka,
            "RAW_TOPIC": f"bench.backfill.{suffix}",
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix,
            "CONSUMER_GROUP": f"bench-backfill-{suffix}",
            "SSE_URL": replay.url,
            "BACKFILL": f"{seconds}s",
            "STATE_DIR": str(workdir / "state-backfill"),
            "LOG_LEVEL": "WARNING",
        }
        started = time.monotonic()
        procs = [
            spawn("processor", env, workdir / "backfill-processor.log"),
            spawn("producer", env, workdir / "backfill-producer.log"),
        ]
        first_window = None
        try:
            while True:
                store = WindowStore(client, KeyLayout(prefix))
                have = set(store.starts(100_000)) | set(store.partial_starts(100_000))
                if have and first_window is None:
                    first_window = time.monotonic() - started
                if wanted <= have:
                    break
                if time.monotonic() - started > 900:
                    raise RuntimeError(f"{len(wanted - have)} windows missing after 15 min")
                time.sleep(0.2)
            full = time.monotonic() - started
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(30)
            client.close()
    return {
        "history_events": events,
        "history_seconds": seconds,
        "rate": rate,
        "windows": len(wanted),
        "first_complete_window_s": round(first_window or 0, 1),
        "full_hour_s": round(full, 1),
        "events_per_s": round(events / full),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=3600, help="seconds of history")
    parser.add_argument("--rate", type=float, default=20.0, help="history events/s")
    args = parser.parse_args()
    with provide() as services, tempfile.TemporaryDirectory() as tmp:
        result = run_backfill(
            services.kafka, services.redis_url, Path(tmp), args.history, args.rate
        )
    for name, value in result.items():
        print(f"{name:>26}: {value}")


if __name__ == "__main__":
    main()
