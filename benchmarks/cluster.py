"""``make bench-cluster`` / ``python -m benchmarks.cluster``: one broker against a
three-broker cluster, in one run.

What replication costs: for each topology, Kafka and Redis of its own
(`devtools.servers.LocalServers`: one broker, then three combined broker+controller
nodes with replication factor 3 and ``min.insync.replicas=2`` for every topic, Kafka's
own included), then

* **catch-up**: ``--events`` recorded-shape events preloaded (``acks=all``, idempotent),
  counted by one and by two processor replicas until every window is in Redis, each
  window checked against the expected counts;
* **producer**: the project's producer over ``--producer-events`` events at full speed
  (a disconnect and resume in the middle), ``acks=all``;
* **live rate**: producer and processor at 40 events/s from the replay server, the CPU
  of each part over ``--live-seconds`` after ``--settle`` seconds, each broker's too.

A topology's settings reach the services as a user's would: through the environment
(``RAW_TOPIC_REPLICATION_FACTOR=3`` on the cluster; ``min.insync.replicas`` follows).
Figures go to ``benchmarks/results/cluster-<date>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.catchup import Result, key_prefix, run_ours, verify
from benchmarks.data import preload
from benchmarks.live import broker_pids, run_live
from benchmarks.producer_bench import run_producer
from benchmarks.run import GRACE_MS, PARTITIONS, WINDOW_MS, Run
from devtools.servers import LocalServers
from wikipulse.kafka import ensure_topic
from wikipulse.settings import KafkaSettings

TOPOLOGIES = {"1 broker": 1, "3 brokers": 3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--producer-events", type=int, default=100_000)
    parser.add_argument("--live-seconds", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=30.0)
    args = parser.parse_args()
    run = Run.start(args.events)
    run.report["topologies"] = {}
    for name, brokers in TOPOLOGIES.items():
        run.console.print(f"[bold]{name}[/bold] …")
        run.report["topologies"][name] = run_topology(brokers, args, run.console)
    run.calibrate_end()
    run.console.print(summary(run.report))
    run.save("cluster-")


def run_topology(brokers: int, args: argparse.Namespace, console: Console) -> dict[str, Any]:
    factor = str(min(brokers, 3))
    with (
        tempfile.TemporaryDirectory(prefix="wp-bench-cluster-") as tmp,
        _environment(RAW_TOPIC_REPLICATION_FACTOR=factor),
    ):
        workdir = Path(tmp)
        local = LocalServers(workdir / "servers", brokers=brokers)
        local.directory.mkdir()
        local.start()
        try:
            return _measure(local, args, workdir, console)
        finally:
            local.stop()


def _measure(
    local: LocalServers, args: argparse.Namespace, workdir: Path, console: Console
) -> dict[str, Any]:
    kafka, redis_url = local.bootstrap, f"redis://127.0.0.1:{local.redis_port}/0"
    found: dict[str, Any] = {"brokers": local.brokers}
    topic = f"bench.cluster.{uuid.uuid4().hex[:8]}"
    ensure_topic(KafkaSettings(kafka_broker_address=kafka), topic, PARTITIONS)
    console.print(f"  preloading {args.events:,} events …")
    expected = preload(kafka, topic, args.events, WINDOW_MS, GRACE_MS, PARTITIONS)
    catchup: list[Result] = []
    for replicas in (1, 2):
        console.print(f"  processor x{replicas} …")
        tag = f"x{replicas}"
        result = run_ours(
            kafka, redis_url, topic, args.events, len(expected), replicas, workdir, tag
        )
        catchup.append(result)
        found[f"{tag}_wrong_windows"] = verify(redis_url, key_prefix(topic, tag), expected)
    found["catchup"] = [r.as_dict() for r in catchup]
    console.print("  producer …")
    producer = run_producer(
        kafka, f"bench.cluster.producer.{uuid.uuid4().hex[:8]}", args.producer_events, workdir
    )
    found["producer"] = [r.as_dict() for r in producer]
    console.print(f"  live rate ({args.live_seconds:.0f} s after {args.settle:.0f} s) …")
    found["live"] = run_live(
        kafka,
        redis_url,
        workdir,
        broker_pids(local),
        seconds=args.live_seconds,
        settle=args.settle,
    )
    return found


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """``values`` in this process' environment (and so every service it spawns) for a
    while."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def summary(report: dict[str, Any]) -> Table:
    """One column per topology: what each part measured."""
    names = list(report["topologies"])
    table = Table(title=f"one broker against three ({report['events']:,} events)")
    table.add_column("figure")
    for name in names:
        table.add_column(name, justify="right")
    parts = [t for t in report["topologies"].values()]

    def row(label: str, cell: Any) -> None:
        table.add_row(label, *[cell(t) for t in parts])

    for i, replicas in enumerate((1, 2)):
        row(
            f"catch-up, processor x{replicas}: events/s (CPU µs/event)",
            lambda t, i=i: _rate(t["catchup"][i]),
        )
        row(
            f"  windows wrong (x{replicas})",
            lambda t, r=replicas: str(t[f"x{r}_wrong_windows"]),
        )
    for i, label in enumerate(("whole run", "before the resume", "after the resume")):
        row(f"producer, {label}: events/s (CPU µs/event)", lambda t, i=i: _rate(t["producer"][i]))
    every = sorted({part for t in parts for part in t["live"]["parts"]})
    for part in every:
        row(
            f"live 40 events/s: {part}, % of a core (RSS MiB)",
            lambda t, p=part: _live(t["live"]["parts"].get(p)),
        )
    row("live 40 events/s: all brokers, % of a core", lambda t: f"{_brokers_cpu(t):.1f}")
    return table


def _brokers_cpu(topology: dict[str, Any]) -> float:
    parts = topology["live"]["parts"].items()
    return float(sum(v["cpu_percent_of_a_core"] for k, v in parts if k.startswith("kafka")))


def _rate(result: dict[str, Any]) -> str:
    return f"{result['events_per_second']:,} ({result['cpu_us_per_event']})"


def _live(part: dict[str, Any] | None) -> str:
    return "" if part is None else f"{part['cpu_percent_of_a_core']:.1f} ({part['rss_mib']})"


if __name__ == "__main__":
    main()
