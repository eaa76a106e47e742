"""``python -m benchmarks.durability``: what making each Redis write durable costs.

The processor commits a checkpoint's offsets to Kafka right after its Redis write, so
the write must survive a Redis crash (docs/operations.md). Three Redis servers, each as
a deployment might run it:

* ``always``: ``appendonly yes``, ``appendfsync always`` (what Compose and
  ``services/local.sh`` run): an fsync before each write is acknowledged;
* ``everysec``: ``appendonly yes``, ``appendfsync everysec`` (Redis's default with an
  AOF): loses up to a second of acknowledged writes on a host crash;
* ``none``: no persistence at all, the floor.

Two figures each:

* **live rate**: one fenced write of a live-sized batch (40 events/s, a 0.5 s
  checkpoint, six partitions: about 3 events in 2 windows) repeated, in ms per write;
  the processor makes about 12 of them a second;
* **catch-up**: the processor counting ``--events`` preloaded events of the recorded
  shape from the start, events/s, and the ratio to ``none``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import redis

from benchmarks.catchup import run_ours
from benchmarks.data import preload
from devtools.servers import free_port, provide
from wikipulse.kafka import ensure_topic
from wikipulse.settings import KafkaSettings
from wikipulse.store.window_store import WindowStore
from wikipulse.store.writes import Batch, Progress

CONFIGS = {
    "always": ["--appendonly", "yes", "--appendfsync", "always"],
    "everysec": ["--appendonly", "yes", "--appendfsync", "everysec"],
    "none": ["--appendonly", "no"],
}
WINDOW_MS, GRACE_MS, PARTITIONS = 30_000, 5_000, 6


def start_redis(folder: Path, options: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen(
        [*command, "--dir", str(folder), *options], stdout=subprocess.DEVNULL
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


def live_writes(url: str, writes: int) -> list[float]:
    """Seconds per fenced write of a live-sized batch."""
    store = WindowStore.connect(url, f"bench-durability:{uuid.uuid4().hex[:8]}:")
    progress = {p: Progress() for p in range(PARTITIONS)}
    took = []
    start = 1_767_225_600_000
    for i in range(writes):
        partition, clock = i % PARTITIONS, start + (i // PARTITIONS) * 500
        window = clock - clock % WINDOW_MS
        counts = {window: {"commons.wikimedia.org": 2, "en.wikipedia.org": 1}}
        closed = clock - GRACE_MS - (clock - GRACE_MS) % WINDOW_MS
        since = progress[partition]
        new = progress[partition] = Progress(since.offset + 4, clock)
        began = time.perf_counter()
        store.write(
            Batch(partition, closed, counts, since, new),
            partitions=PARTITIONS,
            window_ms=WINDOW_MS,
            ttl_seconds=3600,
        )
        took.append(time.perf_counter() - began)
    store.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--writes", type=int, default=3_000)
    args = parser.parse_args()
    report: dict[str, dict[str, float]] = {}
    with provide(need=("kafka",)) as services, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        topic = f"bench-durability-{uuid.uuid4().hex[:8]}"
        ensure_topic(KafkaSettings(kafka_broker_address=services.kafka), topic, PARTITIONS)
        expected = preload(services.kafka, topic, args.events, WINDOW_MS, GRACE_MS, PARTITIONS)
        for name, options in CONFIGS.items():
            folder = workdir / name
            folder.mkdir()
            process, url = start_redis(folder, options)
            try:
                took = sorted(live_writes(url, args.writes))
                result = run_ours(
                    services.kafka, url, topic, args.events, len(expected), 1, workdir, name
                )
            finally:
                process.terminate()
                process.wait(10)
            report[name] = {
                "live_ms_per_write": round(statistics.fmean(took) * 1000, 3),
                "live_p99_ms": round(took[int(len(took) * 0.99)] * 1000, 3),
                "live_ms_per_second_at_12_writes": round(statistics.fmean(took) * 12_000, 2),
                "catchup_events_per_second": round(result.events_per_second),
                "catchup_cpu_us_per_event": round(result.cpu_us_per_event, 1),
            }
    floor = report["none"]["catchup_events_per_second"]
    print(f"{'redis':<10}{'ms/write':>10}{'p99 ms':>9}{'ms/s live':>11}{'catch-up ev/s':>15}")
    for name, figures in report.items():
        figures["catchup_ratio_to_none"] = round(figures["catchup_events_per_second"] / floor, 2)
        print(
            f"{name:<10}{figures['live_ms_per_write']:>10}{figures['live_p99_ms']:>9}"
            f"{figures['live_ms_per_second_at_12_writes']:>11}"
            f"{figures['catchup_events_per_second']:>15} ({figures['catchup_ratio_to_none']})"
        )
    out = Path(__file__).parent / "results" / f"durability-{time.strftime('%Y-%m-%dT%H%M%S')}.json"
    out.write_text(json.dumps({"events": args.events, **report}, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
