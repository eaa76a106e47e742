"""Processor catch-up: a preloaded topic, consumed as fast as each contender can."""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import orjson
import redis
from confluent_kafka import Consumer, TopicPartition

from benchmarks.data import heartbeat_times
from devtools.observe import window_counts
from devtools.processes import spawn, usage
from wikipulse.store.keys import KeyLayout

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    name: str
    events: int
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    rss_start_mib: float | None = None
    rss_end_mib: float | None = None
    note: str = ""

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds * 1e6 / self.events

    def as_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "events_per_second": round(self.events_per_second),
            "cpu_us_per_event": round(self.cpu_us_per_event, 1),
        }


def key_prefix(topic: str, tag: str) -> str:
    """Redis keys of one contender in one run: the topic is new for every run, so a
    Redis reused across runs cannot hand a contender the finished windows of an earlier
    run (which once made a replica look done the moment it started)."""
    return f"bench:{topic}:{tag}:"


def run_ours(
    kafka: str,
    redis_url: str,
    topic: str,
    n: int,
    windows: int,
    replicas: int,
    workdir: Path,
    tag: str,
) -> Result:
    """Our processor, exactly-once, until every window is in Redis' index of complete windows."""
    prefix = key_prefix(topic, tag)
    env = {
        **os.environ,
        "KAFKA_BROKER_ADDRESS": kafka,
        "RAW_TOPIC": topic,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "CONSUMER_GROUP": f"bench-{tag}",
        "LOG_LEVEL": "WARNING",
    }
    client = redis.Redis.from_url(redis_url)
    start = time.monotonic()
    procs = [
        spawn(
            "processor",
            {**env, "STATE_DIR": str(workdir / f"state-{tag}-{i}")},
            workdir / f"{tag}-{i}.log",
        )
        for i in range(replicas)
    ]
    rss_start: float | None = None
    samples: dict[int, object] = {}
    try:
        keys = KeyLayout(prefix)  # the stream's first window is published partial
        while (done := client.zcard(keys.complete) + client.zcard(keys.partial)) < windows:
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{tag}: processor exited, see {workdir}")
                samples[p.pid] = usage(p.pid)
            if rss_start is None and done >= windows // 10:
                rss_start = sum(usage(p.pid).rss_kib for p in procs) / 1024
            time.sleep(0.05)
        seconds = time.monotonic() - start
        final = [usage(p.pid) for p in procs]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    return Result(
        f"wikipulse processor x{replicas}",
        n,
        seconds,
        sum(u.cpu_seconds for u in final),
        max(u.peak_rss_kib for u in final) / 1024,
        rss_start,
        sum(u.rss_kib for u in final) / 1024,
        "exactly-once; until all windows complete in Redis",
    )


def run_naive(kafka: str, redis_url: str, topic: str, n: int, workdir: Path) -> Result:
    """The naive Quix app, until its group has committed every offset."""
    group = "bench-naive"
    env = {
        **os.environ,
        "KAFKA_BROKER_ADDRESS": kafka,
        "RAW_TOPIC": topic,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": key_prefix(topic, "naive"),
        "CONSUMER_GROUP": group,
        "STATE_DIR": str(workdir / "state-naive"),
    }
    start = time.monotonic()
    proc = spawn("benchmarks.naive_app", env, workdir / "naive.log")
    try:
        wait_committed(kafka, group, topic, proc)
        seconds = time.monotonic() - start
        final = usage(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    return Result(
        "naive Quix Streams",
        n,
        seconds,
        final.cpu_seconds,
        final.peak_rss_kib / 1024,
        note="at-least-once; until every offset is committed",
    )


def wait_committed(kafka: str, group: str, topic: str, proc: subprocess.Popen[bytes]) -> None:
    consumer = Consumer(
        {"bootstrap.servers": kafka, "group.id": group, "enable.auto.commit": False}
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
    ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{group} exited with {proc.returncode}")
            committed = consumer.committed(partitions, timeout=10)
            # each partition ends with empty heartbeats; the naive job reads them (they
            # close its windows), but allow for a job that skips them and so commits less
            skipped = len(heartbeat_times(0, 0, 0))
            if all(tp.offset >= ends[tp.partition] - skipped for tp in committed):
                return
            time.sleep(0.2)
    finally:
        consumer.close()


def run_limit(
    kafka: str, topic: str, n: int, window_ms: int
) -> tuple[Result, dict[int, Counter[str]], dict[tuple[int, str], Counter[str]]]:
    """A minimal confluent-kafka consumer: orjson-decode each value, count per (window,
    wiki), and the same breakdowns as the processor (bot or human, the kind of change,
    bytes added and removed), from the event's own fields."""
    consumer = Consumer(
        {
            "bootstrap.servers": kafka,
            "group.id": f"bench-limit-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = len(metadata.topics[topic].partitions)
    counts: dict[int, Counter[str]] = {}
    breakdowns: dict[tuple[int, str], Counter[str]] = {}
    seen, eof = 0, set[int]()
    start, cpu = time.monotonic(), time.process_time()
    consumer.subscribe([topic])
    loads = orjson.loads
    while len(eof) < partitions:
        for msg in consumer.consume(1000, 1.0):
            if msg.error():
                eof.add(msg.partition())
                continue
            value = msg.value()
            if not value:
                continue
            event = loads(value)
            ms = int(datetime.fromisoformat(event["meta"]["dt"]).timestamp() * 1000)
            start_ms, wiki = ms - ms % window_ms, event["server_name"]
            window = counts.setdefault(start_ms, Counter())
            window[wiki] += 1
            row = breakdowns.get((start_ms, wiki))
            if row is None:
                row = breakdowns[(start_ms, wiki)] = Counter()
            row["bot" if event.get("bot") is True else "human"] += 1
            row[event.get("type") or "other"] += 1
            length = event.get("length")
            if isinstance(length, dict):
                delta = (length.get("new") or 0) - (length.get("old") or 0)
                row["added" if delta > 0 else "removed"] += abs(delta)
            seen += 1
    seconds, cpu_seconds = time.monotonic() - start, time.process_time() - cpu
    consumer.close()
    assert seen == n, (seen, n)
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    return (
        Result(
            "limit: confluent-kafka + orjson + dicts, with breakdowns",
            n,
            seconds,
            cpu_seconds,
            peak / 1024,
            note="in-process, breakdowns included; no state, no Redis, no guarantees",
        ),
        counts,
        breakdowns,
    )


def verify(redis_url: str, prefix: str, expected: dict[int, dict[str, int]]) -> int:
    """How many windows in Redis differ from the expected counts (0 = exact), read
    through the Redis contract as the tests read them."""
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(
            window_counts(client, prefix, start) != counts for start, counts in expected.items()
        )
    finally:
        client.close()


def run_bytewax(kafka: str, redis_url: str, topic: str, n: int, workdir: Path) -> Result | str:
    """Bytewax in its own virtualenv, if it installed; else why not."""
    python = ROOT / ".cache" / "bench-bytewax" / "bin" / "python"
    if not python.exists():
        setup = subprocess.run(
            [
                "bash",
                "-c",
                f"python3 -m venv {python.parent.parent} && {python} -m pip install -q "
                "'bytewax[kafka]==0.21.1' orjson redis",
            ],
            capture_output=True,
            text=True,
        )
        if setup.returncode != 0:
            return f"bytewax did not install: {setup.stderr.strip().splitlines()[-1:]}"
    env = {
        **os.environ,
        "KAFKA_BROKER_ADDRESS": kafka,
        "RAW_TOPIC": topic,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": key_prefix(topic, "bytewax"),
        "PYTHONPATH": str(ROOT),
    }
    start = time.monotonic()
    with (workdir / "bytewax.log").open("ab") as log:
        proc = subprocess.Popen(
            [str(python), "-m", "bytewax.run", "benchmarks.bytewax_flow:flow"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    peak = 0.0
    while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        peak = max(peak, usage(proc.pid).peak_rss_kib / 1024)
        time.sleep(0.05)
    seconds = time.monotonic() - start
    _, status, rusage = os.wait4(proc.pid, 0)  # exact CPU of the finished child
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = rusage.ru_utime + rusage.ru_stime
    if proc.returncode != 0:
        return f"bytewax failed (exit {proc.returncode}), see {workdir / 'bytewax.log'}"
    return Result(
        "bytewax 0.21 (1 worker)",
        n,
        seconds,
        cpu,
        peak,
        note="reads to the end of the topic and exits; no exactly-once",
    )
