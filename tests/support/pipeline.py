"""Running the real services as processes, and an independent ground truth to check them.

The end-to-end tests start ``python -m producer`` and ``python -m processor`` exactly as
a user would, against the session's real Kafka and Redis, fed by the replay server.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import redis
from confluent_kafka import Consumer, TopicPartition

from devtools.servers import Services
from tests.support.names import Names
from tests.support.paths import ROOT
from wikipulse.store import Breakdown, KeyLayout, WindowStore


@dataclass
class Service:
    """One service process; its output goes to ``log``."""

    module: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env=self.env,
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no flush, no commit, no goodbye (and it must have died of it)."""
        assert self.process is not None
        assert self.process.poll() is None, f"{self.module} had already exited"
        self.process.kill()
        assert self.process.wait(10) == -signal.SIGKILL, self.process.returncode

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"{self.module} ignored SIGTERM for {timeout} s") from None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Pipeline:
    """Environment shared by the services of one test, and the services it started."""

    services: Services
    names: Names
    workdir: Path
    sse_url: str = ""
    overrides: dict[str, str] = field(default_factory=dict)
    started: list[Service] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "KAFKA_BROKER_ADDRESS": self.services.kafka,
            "RAW_TOPIC": self.names.topic,
            "RAW_TOPIC_PARTITIONS": "6",
            "REDIS_URL": self.services.redis_url,
            "REDIS_KEY_PREFIX": self.names.prefix,
            "CONSUMER_GROUP": self.names.group,
            "SSE_URL": self.sse_url,
            "WINDOW_SECONDS": "3",
            "GRACE_SECONDS": "1",
            "HEARTBEAT_SECONDS": "0.5",
            "COMMIT_INTERVAL_SECONDS": "0.5",
            "READ_TIMEOUT_SECONDS": "5",
            "BACKOFF_INITIAL_SECONDS": "0.2",
            "BACKOFF_MAX_SECONDS": "2",
            "BACKFILL": "0",  # a first start reads from now; the backfill tests opt in
            "LOG_LEVEL": "INFO",
        }
        env.update(self.overrides)
        env.update(extra)
        return env

    def producer(self, name: str = "producer", **extra: str) -> Service:
        return self._start("producer", name, extra)

    def processor(self, replica: int = 0, **extra: str) -> Service:
        extra.setdefault("STATE_DIR", str(self.workdir / f"state-{replica}"))
        return self._start("processor", f"processor-{replica}", extra)

    def dashboard(self, **extra: str) -> Service:
        return self._start("dashboard", "dashboard", extra)

    def _start(self, module: str, name: str, extra: dict[str, str]) -> Service:
        service = Service(module, self.env(**extra), self.workdir / f"{name}.log").start()
        self.started.append(service)
        return service

    def stop_all(self) -> None:
        for service in self.started:
            if service.alive:
                service.process.kill() if service.process else None
                if service.process:
                    service.process.wait(10)

    @property
    def window_ms(self) -> int:
        return int(self.env()["WINDOW_SECONDS"]) * 1000

    def logs(self) -> str:
        return "\n".join(f"--- {s.log.name}\n{s.output()[-4000:]}" for s in self.started)


# ---------------------------------------------------------------- ground truth


def judge(raw: bytes) -> tuple[str, str, int, str] | str:
    """One record by the rules of the README, written again with the standard library.

    Returns ``(server_name, identity, time_ms, "event")`` for a countable event, else
    what it is instead: ``"canary"`` or ``"invalid"``. Countable: a JSON object, not a
    canary, with a non-empty server name without control characters, at ``meta.dt``
    (else, when there is no ``meta.dt`` at all, ``timestamp`` seconds); its identity is
    ``meta.id`` (else a hash of the bytes).
    """
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "invalid"
    if not isinstance(obj, dict):
        return "invalid"
    meta: dict[str, Any] = obj["meta"] if isinstance(obj.get("meta"), dict) else {}
    if meta.get("domain") == "canary":
        return "canary"
    name = obj.get("server_name")
    if not isinstance(name, str) or not name or len(name) > 253:
        return "invalid"
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        return "invalid"
    if isinstance(meta.get("dt"), str):
        try:
            dt = datetime.fromisoformat(meta["dt"])
        except ValueError:
            return "invalid"
        dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
        ms = int(dt.timestamp() * 1000)
    elif meta.get("dt") is None and type(obj.get("timestamp")) in (int, float):
        ms = int(obj["timestamp"] * 1000)
    else:
        return "invalid"
    identity = meta.get("id") if isinstance(meta.get("id"), str) and meta.get("id") else None
    return name, identity or "sha1:" + hashlib.sha1(raw).hexdigest(), ms, "event"


def truth(payloads: Iterable[bytes], window_ms: int) -> dict[int, Counter[str]]:
    """Expected counts per window, computed independently of the code under test."""
    windows: dict[int, Counter[str]] = {}
    seen: set[tuple[int, str, str]] = set()  # a copy counts once in its wiki's window
    for raw in payloads:
        verdict = judge(raw)
        if isinstance(verdict, str):
            continue
        name, identity, ms, _ = verdict
        start = ms - ms % window_ms
        if (start, name, identity) in seen:
            continue
        seen.add((start, name, identity))
        windows.setdefault(start, Counter())[name] += 1
    return windows


#: The change types a breakdown names; any other ``type`` is "other".
CHANGE_TYPES = ("edit", "new", "log", "categorize", "external")


def breakdown_row(obj: dict[str, Any]) -> Counter[str]:
    """What one countable event adds to its breakdowns, by the README's rules written
    again with the standard library: one event, a bot's when ``bot`` is true (else a
    human's), its type, and its size change (``length.new`` minus ``length.old``, or 0
    for a page creation) as bytes added or removed."""
    row = Counter(count=1)
    row["bot" if obj.get("bot") is True else "human"] += 1
    kind = obj.get("type")
    row[kind if isinstance(kind, str) and kind in CHANGE_TYPES else "other"] += 1
    length = obj.get("length")
    if isinstance(length, dict):
        new, old = length.get("new"), length.get("old") or 0
        if type(new) is int and type(old) is int and 0 <= new < 2**31 and 0 <= old < 2**31:
            delta = new - old
            row["added" if delta > 0 else "removed"] += abs(delta)
    return +row


def truth_breakdowns(
    payloads: Iterable[bytes], window_ms: int
) -> dict[int, dict[str, Counter[str]]]:
    """Expected breakdowns per window: per wiki, and for all wikis under ``""``,
    computed independently of the code under test (a copy counts once, as in `truth`)."""
    windows: dict[int, dict[str, Counter[str]]] = {}
    seen: set[tuple[int, str, str]] = set()
    for raw in payloads:
        verdict = judge(raw)
        if isinstance(verdict, str):
            continue
        name, identity, ms, _ = verdict
        start = ms - ms % window_ms
        if (start, name, identity) in seen:
            continue
        seen.add((start, name, identity))
        row = breakdown_row(json.loads(raw))
        for wiki in (name, ""):
            windows.setdefault(start, {}).setdefault(wiki, Counter()).update(row)
    return windows


def window_breakdowns(client: redis.Redis, prefix: str, start: int) -> dict[str, Counter[str]]:
    """Every breakdown of one published window (per wiki, and ``""`` for all), as the
    fields `breakdown_row` names, zeros left out."""
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


def invalid(payloads: Iterable[bytes]) -> set[bytes]:
    """The payloads that must end in the dead-letter topic."""
    return {raw for raw in payloads if judge(raw) == "invalid"}


def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


# ---------------------------------------------------------------- reading results


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


#: How many windows at the start of a stream may be published partial: the window of its
#: first record (the producer marks that time in every partition before it).
LEADING_PARTIAL = 1


def assert_index_matches_truth(
    pipeline: Pipeline,
    client: redis.Redis,
    expected: dict[int, Counter[str]],
    timeout: float = 90,
    leading_partial: int = LEADING_PARTIAL,
    breakdowns: dict[int, dict[str, Counter[str]]] | None = None,
) -> None:
    """Wait until every expected window is published, then compare each one exactly,
    its ``breakdowns`` too when given (`truth_breakdowns`).

    The stream's first window(s) are published partial (their records before the
    stream's first one cannot be known): at most ``leading_partial`` of them, and only
    at the start; every other window must be complete and exact.
    """
    prefix = pipeline.names.prefix
    wanted = sorted(expected)

    def published() -> bool:
        done = set(indexed_windows(client, prefix)) | set(partial_windows(client, prefix))
        return set(wanted) <= done

    wait_for(
        published,
        timeout,
        lambda: (
            f"windows {wanted} published, have complete {indexed_windows(client, prefix)}, "
            f"partial {partial_windows(client, prefix)}\n" + pipeline.logs()
        ),
    )
    partial = [start for start in wanted if start in set(partial_windows(client, prefix))]
    assert partial == wanted[: len(partial)], f"partial windows {partial} inside the stream"
    assert len(partial) <= leading_partial, f"{len(partial)} partial windows: {partial}"
    for start in wanted[len(partial) :]:
        assert window_counts(client, prefix, start) == expected[start], start
        if breakdowns is not None:
            assert window_breakdowns(client, prefix, start) == breakdowns[start], start


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
