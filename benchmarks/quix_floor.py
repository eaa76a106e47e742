"""What Quix Streams itself costs per event, under the processor: the floor of any design
that sends every event through a Quix window.

    python -m benchmarks.quix_floor [--events 200000]

Preloads the recorded shape (as `make bench` does), then runs, each in a fresh process
and consumer group, exactly-once with raw bytes in: the bare loop (one ``update`` per
record), the loop plus ``tumbling_window(30 s).count().final()`` closing by partition,
and the same closing by key. Prints events/s (wall, start-up included) and CPU µs/event.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Literal

from benchmarks.calibration import calibrate, describe
from benchmarks.data import heartbeat_times, preload
from devtools.servers import provide
from wikipulse.kafka import ensure_topic
from wikipulse.settings import KafkaSettings

WINDOW_MS, GRACE_MS, PARTITIONS = 30_000, 5_000, 6
VARIANTS = ("loop", "window-partition", "window-key")


def run_variant(variant: str, kafka: str, topic: str, records: int, state_dir: str) -> None:
    """One variant in this process; prints one line and exits when all records are seen."""
    from quixstreams import Application

    app = Application(
        broker_address=kafka,
        consumer_group=f"floor-{variant}-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        commit_interval=0.5,
        state_dir=state_dir,
        loglevel="WARNING",
    )
    sdf = app.dataframe(app.topic(topic, key_deserializer="bytes", value_deserializer="bytes"))
    seen = [0]

    def tick(_value: object) -> None:
        seen[0] += 1
        if seen[0] >= records:
            app.stop()

    sdf = sdf.update(tick)
    if variant != "loop":
        closing: Literal["key", "partition"] = (
            "partition" if variant == "window-partition" else "key"
        )
        sdf.tumbling_window(WINDOW_MS, grace_ms=GRACE_MS).count().final(closing_strategy=closing)
    start = time.monotonic()
    app.run()
    wall = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print(
        f"{variant:>17}: {records / wall:9,.0f} events/s  {cpu / records * 1e6:6.1f} CPU µs/event"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--kafka", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--records", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--state-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # a child run
        run_variant(args.variant, args.kafka, args.topic, args.records, args.state_dir)
        return
    print(describe(calibrate()))
    with provide(need=("kafka",)) as services, tempfile.TemporaryDirectory() as tmp:
        topic = f"bench.floor.{uuid.uuid4().hex[:8]}"
        ensure_topic(KafkaSettings(kafka_broker_address=services.kafka), topic, PARTITIONS)
        preload(services.kafka, topic, args.events, WINDOW_MS, GRACE_MS, PARTITIONS)
        # every event, plus the heartbeats `preload` ends each partition with
        records = args.events + len(heartbeat_times(0, 0, 0)) * PARTITIONS
        for variant in VARIANTS:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.quix_floor",
                    "--variant",
                    variant,
                    "--kafka",
                    services.kafka,
                    "--topic",
                    topic,
                    "--records",
                    str(records),
                    "--state-dir",
                    str(Path(tmp) / variant),
                ],
                check=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )


if __name__ == "__main__":
    main()
