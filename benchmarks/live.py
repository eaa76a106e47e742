"""What WikiPulse costs at the live rate: CPU and memory of each part at 40 events/s.

Producer and processor run with their defaults (30 s windows, heartbeats every 0.25 s
to each of 6 partitions, a checkpoint every 0.5 s) against the replay server at the
real stream's rate; after a minute to settle, CPU is measured over ``seconds`` for the
producer, the processor and, when the run started its own broker, the Kafka broker.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devtools.processes import spawn, usage
from devtools.recordings import RECENTCHANGE, load_events
from devtools.replay import ReplayServer
from devtools.servers import LocalServers


def broker_pids(local: LocalServers | None) -> dict[str, int]:
    """The pid of each broker services/local.sh started for this run, by name (none
    when the run's Kafka was not started by it)."""
    if local is None:
        return {}
    found = {
        "kafka broker" if local.brokers == 1 else f"kafka broker {node}": local.broker_pid(node)
        for node in range(1, local.brokers + 1)
    }
    return {name: pid for name, pid in found.items() if pid is not None}


def run_live(
    kafka: str,
    redis_url: str,
    workdir: Path,
    brokers: Mapping[str, int],
    seconds: float = 120.0,
    rate: float = 40.0,
    settle: float = 60.0,
) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    with ReplayServer() as replay:
        env = {
            **os.environ,
            "KAFKA_BROKER_ADDRESS": kafka,
            "RAW_TOPIC": f"bench.live.{suffix}",
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": f"bench:live:{suffix}:",
            "CONSUMER_GROUP": f"bench-live-{suffix}",
            "SSE_URL": replay.url,
            "BACKFILL": "0",
            "STATE_DIR": str(workdir / "state-live"),
            "LOG_LEVEL": "WARNING",
        }
        stop = threading.Event()
        player = threading.Thread(
            target=replay.play,
            args=(load_events(RECENTCHANGE), rate, True),
            kwargs={"loop": True, "stop": stop},
            daemon=True,
        )
        player.start()
        procs = {
            "processor": spawn("processor", env, workdir / "live-processor.log"),
            "producer": spawn("producer", env, workdir / "live-producer.log"),
        }
        pids = {name: proc.pid for name, proc in procs.items()}
        pids.update(brokers)
        try:
            time.sleep(settle)
            before = {name: usage(pid) for name, pid in pids.items()}
            started = time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - started
            after = {name: usage(pid) for name, pid in pids.items()}
        finally:
            stop.set()
            for proc in procs.values():
                proc.terminate()
                proc.wait(30)
    return {
        "rate": rate,
        "seconds": round(elapsed),
        "parts": {
            name: {
                "cpu_percent_of_a_core": round(
                    100 * (after[name].cpu_seconds - before[name].cpu_seconds) / elapsed, 1
                ),
                "rss_mib": round(after[name].rss_kib / 1024),
            }
            for name in pids
        },
    }
