"""``python -m benchmarks.durability``: what making each Redis write durable costs.

The processor commits a checkpoint's offsets to Kafka right after its Redis writes, so
they must survive Redis's loss (docs/operations.md, `processor.durability`). Redis set
up as a deployment might run it:

* ``always``: ``appendonly yes``, ``appendfsync always`` (what Compose and
  ``services/local.sh`` run for a single Redis): an fsync before each write is answered;
* ``everysec``: ``appendonly yes``, ``appendfsync everysec`` (Redis's default with an
  AOF): loses up to a second of acknowledged writes on a host crash;
* ``none``: no persistence at all, the floor;
* ``always+replica`` and ``everysec+replica``: the same primary with one replica, and the
  processor's confirmation before each commit (`processor.durability.confirm`: a marker
  and ``WAIT 1``), what a Sentinel deployment runs (``always+replica`` is
  ``services/local.sh`` with ``REDIS_REPLICAS``, and docker-compose.sentinel.yml).

Two figures each:

* **live rate**: a checkpoint of live-sized batches (40 events/s, a 0.5 s checkpoint, six
  partitions: about 3 events in 2 windows each), six fenced writes and the confirmation,
  repeated, in ms per write and per checkpoint; the processor makes two a second;
* **catch-up**: the processor counting ``--events`` preloaded events of the recorded
  shape from the start, events/s, and the ratio to ``none`` (with a replica, the
  processor finds it and WAITs for it, as it does in production).
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
from benchmarks.run import GRACE_MS, PARTITIONS, WINDOW_MS
from devtools.servers import free_port, provide
from processor.durability import check_server, confirm, primary_of
from wikipulse.kafka import ensure_topic
from wikipulse.settings import KafkaSettings
from wikipulse.store.keys import KeyLayout
from wikipulse.store.window_store import WindowStore
from wikipulse.store.writes import Batch, Progress

CONFIGS = {
    "always": ["--appendonly", "yes", "--appendfsync", "always"],
    "everysec": ["--appendonly", "yes", "--appendfsync", "everysec"],
    "none": ["--appendonly", "no"],
    "always+replica": ["--appendonly", "yes", "--appendfsync", "always"],
    "everysec+replica": ["--appendonly", "yes", "--appendfsync", "everysec"],
}


def start_redis(folder: Path, options: list[str]) -> tuple[subprocess.Popen[bytes], int]:
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
    return process, port


def start_replica(folder: Path, options: list[str], primary: int) -> subprocess.Popen[bytes]:
    """A replica of ``primary``, returned once its link is up."""
    process, port = start_redis(folder, [*options, "--replicaof", "127.0.0.1", str(primary)])
    client = redis.Redis(port=port)
    while client.info("replication").get("master_link_status") != "up":
        time.sleep(0.05)
    return process


def live_checkpoints(url: str, checkpoints: int) -> tuple[list[float], list[float]]:
    """Seconds per fenced write, and per checkpoint (a write per partition, then the
    confirmation the processor makes before the commit)."""
    prefix = f"bench-durability:{uuid.uuid4().hex[:8]}:"
    store = WindowStore(redis.Redis.from_url(url), KeyLayout(prefix))
    durability = check_server(store.client, None, sentinel=False, timeout_seconds=5)
    marker = store.keys.source("").durable
    progress = {p: Progress() for p in range(PARTITIONS)}
    writes, whole = [], []
    start = 1_767_225_600_000
    for i in range(checkpoints):
        clock = start + i * 500
        window = clock - clock % WINDOW_MS
        counts = {window: {"commons.wikimedia.org": 2, "en.wikipedia.org": 1}}
        closed = clock - GRACE_MS - (clock - GRACE_MS) % WINDOW_MS
        began = time.perf_counter()
        # as the sink does: where the writes go, when the confirmation has to match it
        origin = primary_of(store.client) if durability.confirms else None
        for partition in range(PARTITIONS):
            since = progress[partition]
            new = progress[partition] = Progress(since.offset + 4, clock)
            one = time.perf_counter()
            store.write(
                Batch(partition, closed, counts, since, new),
                partitions=PARTITIONS,
                window_ms=WINDOW_MS,
                ttl_seconds=3600,
            )
            writes.append(time.perf_counter() - one)
        confirm(store.client, durability, marker, origin)
        whole.append(time.perf_counter() - began)
    store.close()
    return writes, whole


def run_durability(
    kafka: str, workdir: Path, events: int, checkpoints: int, configs: list[str]
) -> dict[str, dict[str, float]]:
    """Every configuration of ``configs`` (`CONFIGS`), one after the other: the live
    checkpoints, then the processor catching up on ``events`` preloaded events."""
    report: dict[str, dict[str, float]] = {}
    topic = f"bench-durability-{uuid.uuid4().hex[:8]}"
    ensure_topic(KafkaSettings(kafka_broker_address=kafka), topic, PARTITIONS)
    expected = preload(kafka, topic, events, WINDOW_MS, GRACE_MS, PARTITIONS)
    for name in configs:
        options = CONFIGS[name]
        folder = workdir / f"durability-{name}"
        folder.mkdir()
        process, port = start_redis(folder, options)
        processes = [process]
        url = f"redis://127.0.0.1:{port}/0"
        try:
            if name.endswith("+replica"):
                (workdir / f"durability-{name}-replica").mkdir()
                processes.append(
                    start_replica(workdir / f"durability-{name}-replica", options, port)
                )
            writes, whole = live_checkpoints(url, checkpoints)
            writes.sort()
            whole.sort()
            result = run_ours(kafka, url, topic, events, len(expected), 1, workdir, name)
        finally:
            for running in reversed(processes):
                running.terminate()
                running.wait(10)
        report[name] = {
            "live_ms_per_write": round(statistics.fmean(writes) * 1000, 3),
            "live_p99_ms_per_write": round(writes[int(len(writes) * 0.99)] * 1000, 3),
            "live_ms_per_checkpoint": round(statistics.fmean(whole) * 1000, 3),
            "live_p99_ms_per_checkpoint": round(whole[int(len(whole) * 0.99)] * 1000, 3),
            # two checkpoints a second (COMMIT_INTERVAL_SECONDS 0.5)
            "live_ms_per_second": round(statistics.fmean(whole) * 2000, 2),
            "catchup_events_per_second": round(result.events_per_second),
            "catchup_cpu_us_per_event": round(result.cpu_us_per_event, 1),
        }
    floor = report.get("none", next(iter(report.values())))["catchup_events_per_second"]
    always = report.get("always")
    for figures in report.values():
        figures["catchup_ratio_to_none"] = round(figures["catchup_events_per_second"] / floor, 2)
        if always:
            figures["checkpoint_ratio_to_always"] = round(
                figures["live_ms_per_checkpoint"] / always["live_ms_per_checkpoint"], 2
            )
    return report


def table(report: dict[str, dict[str, float]]) -> list[str]:
    """The figures of `run_durability`, as lines of a table."""
    lines = [
        f"{'redis':<18}{'ms/write':>9}{'ms/checkpoint':>15}{'p99':>8}{'ms/s live':>11}"
        f"{'catch-up ev/s':>15}{'checkpoint to always':>22}"
    ]
    for name, figures in report.items():
        ratio = figures.get("checkpoint_ratio_to_always")
        lines.append(
            f"{name:<18}{figures['live_ms_per_write']:>9}{figures['live_ms_per_checkpoint']:>15}"
            f"{figures['live_p99_ms_per_checkpoint']:>8}{figures['live_ms_per_second']:>11}"
            f"{figures['catchup_events_per_second']:>9} ({figures['catchup_ratio_to_none']})"
            f"{'' if ratio is None else f'x{ratio}':>22}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--checkpoints", type=int, default=500)
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    with provide(need=("kafka",)) as services, tempfile.TemporaryDirectory() as tmp:
        report = run_durability(
            services.kafka, Path(tmp), args.events, args.checkpoints, args.configs
        )
    print("\n".join(table(report)))
    out = Path(__file__).parent / "results" / f"durability-{time.strftime('%Y-%m-%dT%H%M%S')}.json"
    out.write_text(json.dumps({"events": args.events, **report}, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
