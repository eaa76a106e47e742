"""Reading a running pipeline: its windows through the Redis contract (`WindowStore`),
the records of a topic, a service's metrics, and waiting for a condition."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

import httpx
import redis
from confluent_kafka import Consumer, TopicPartition

from devtools.processes import Service
from wikipulse.store.keys import KeyLayout
from wikipulse.store.values import Breakdown
from wikipulse.store.window_store import WindowStore


def metric(service: Service, name: str, label: str = "") -> float:
    """The sum of a metric's samples (those whose labels contain ``label``), read from
    the running service's ``/metrics`` (it needs ``METRICS_PORT``)."""
    port = service.env["METRICS_PORT"]
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith((name + "{", name + " ")) and label in line
    )


def indexed_windows(client: redis.Redis, prefix: str) -> list[int]:
    """The starts of the complete windows, oldest first (through the Redis contract)."""
    return WindowStore(client, KeyLayout(prefix)).starts(1_000_000)


def partial_windows(client: redis.Redis, prefix: str) -> list[int]:
    """The starts of the windows published partial, oldest first."""
    return WindowStore(client, KeyLayout(prefix)).partial_starts(1_000_000)


def window_counts(client: redis.Redis, prefix: str, start: int) -> Counter[str]:
    """The counts of one published window, read fresh (no cache)."""
    return Counter(WindowStore(client, KeyLayout(prefix)).counts([start])[start])


def window_breakdowns(client: redis.Redis, prefix: str, start: int) -> dict[str, Counter[str]]:
    """Every breakdown of one published window (per wiki, and ``""`` for all), as the
    fields `devtools.truth.breakdown_row` names, zeros left out."""
    return breakdown_rows(client, KeyLayout(prefix).breakdown(start))


def breakdown_rows(client: redis.Redis, key: str) -> dict[str, Counter[str]]:
    """A breakdown hash (a window's, or a bucket's: the same layout), as `window_breakdowns`."""
    found: dict[str, Counter[str]] = {}
    for name, value in cast(dict[bytes, bytes], client.hgetall(key)).items():
        part = Breakdown.decode(value)
        row = Counter(count=part.count, bot=part.bot, human=part.human, **part.types)
        row.update(added=part.added, removed=part.removed)
        found[name.decode("utf-8", "replace")] = +row
    return found


def wait_for(
    condition: Callable[[], Any],
    timeout: float,
    what: str | Callable[[], str],
    interval: float = 0.25,
) -> Any:
    """Poll ``condition`` until truthy; ``what`` (or what it returns) explains a time-out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what if isinstance(what, str) else what()}"
    )


def read_topic(kafka: str, topic: str, timeout: float = 10) -> list[Any]:
    """Every record of ``topic`` (committed ones only), across its partitions."""
    consumer = Consumer(
        {
            "bootstrap.servers": kafka,
            "group.id": f"reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = list(metadata.topics[topic].partitions) if topic in metadata.topics else []
        if not partitions:
            return []
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        records: list[Any] = []
        done: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(done) < len(partitions) and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                done.add(msg.partition())
                continue
            records.append(msg)
        return records
    finally:
        consumer.close()
