"""The textbook job as an oracle (#29).

``benchmarks/naive_app.py`` is the straightforward Quix Streams job:
``tumbling_window(W, grace).count().final(closing_strategy="partition")``, one ``ZADD``
per result. It runs beside ``python -m processor`` on the same raw topic, on real Kafka
and Redis, and both must publish the same windows, window for window, and both must
equal a count made here with the standard library from what the topic holds.

Where the two differ by design, the test names the case and asserts it:

- our first window is *partial* (we cannot know what came before the stream's first
  record), never complete, yet its counts equal the naive job's;
- heartbeats never count, in either job (the naive one counts them under their own key,
  which it never writes);
- the naive job has no completeness index (no ``windows`` or ``partial`` key).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import cast

import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.data import heartbeat_times, preload
from devtools.observe import wait_for, window_breakdowns
from devtools.processes import Service
from devtools.recordings import RECENTCHANGE, load_events
from devtools.servers import Services
from devtools.truth import breakdown_row
from tests.support.names import Names
from tests.support.pipeline import Pipeline
from wikipulse.events import HEARTBEAT_KEY, Event, Header, Kind, heartbeat_record, parse
from wikipulse.store.keys import KeyLayout
from wikipulse.store.window_store import WindowStore

PARTITIONS = 6
Windows = dict[int, Counter[str]]


# ---------------------------------------------------------------- writing the raw topic


def create_topic(kafka: str, topic: str) -> None:
    """The raw topic, kept forever: the recording's event times are months old, and the
    broker's 7-day retention would delete them under the test."""
    admin = AdminClient({"bootstrap.servers": kafka})
    new = NewTopic(topic, num_partitions=PARTITIONS, config={"retention.ms": "-1"})
    admin.create_topics([new], request_timeout=15)[topic].result()
    wait_for(
        lambda: all(
            p.leader >= 0
            for p in admin.list_topics(topic, timeout=10).topics[topic].partitions.values()
        ),
        30,
        f"leaders for {topic}",
    )


def write_recording(
    kafka: str, topic: str, payloads: list[bytes], window_ms: int, grace_ms: int
) -> None:
    """The recording as the producer writes it: key = server name, timestamp = event time,
    hint headers; a heartbeat in every partition at the first event's time before it,
    and the closing heartbeats (`benchmarks.data.heartbeat_times`) after it."""
    producer = Producer({"bootstrap.servers": kafka, "enable.idempotence": True, "linger.ms": 20})
    events = [parse(raw) for raw in payloads]
    assert all(isinstance(e, Event) for e in events), "the recording holds events only"
    first, last = events[0], max(e.time_ms for e in events if isinstance(e, Event))
    assert isinstance(first, Event)
    for partition in range(PARTITIONS):
        producer.produce(topic, **heartbeat_record(partition, first.time_ms))
    for raw, event in zip(payloads, events, strict=True):
        assert isinstance(event, Event)
        headers = [
            (Header.KIND, Kind.EVENT),
            (Header.EVENT_ID, event.event_id.encode()),
            (Header.FACTS, event.facts),
        ]
        producer.produce(
            topic, raw, event.server_name.encode(), timestamp=event.time_ms, headers=headers
        )
    for timestamp in heartbeat_times(last, window_ms, grace_ms):
        for partition in range(PARTITIONS):
            producer.produce(topic, **heartbeat_record(partition, timestamp))
    assert producer.flush(60) == 0


# ---------------------------------------------------------------- the independent count


@dataclass
class Written:
    """What the raw topic holds, counted with the standard library."""

    windows: Windows
    heartbeats: Counter[int]  # per partition
    ends: dict[int, int]  # high watermark per partition
    #: per window, per wiki (and "" for all): `devtools.truth.breakdown_row` summed
    breakdowns: dict[int, dict[str, Counter[str]]]


def count_topic(kafka: str, topic: str, window_ms: int, timeout: float = 120) -> Written:
    """Every record of ``topic`` read back and judged with `json` and `datetime`: an event
    counts once in the window of its ``meta.dt``, in its ``server_name``'s row."""
    consumer = Consumer(
        {
            "bootstrap.servers": kafka,
            "group.id": f"oracle-reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    windows: Windows = {}
    breakdowns: dict[int, dict[str, Counter[str]]] = {}
    heartbeats: Counter[int] = Counter()
    try:
        tps = [TopicPartition(topic, p, 0) for p in range(PARTITIONS)]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
        consumer.assign(tps)
        done = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + timeout
        while len(done) < PARTITIONS:
            assert time.monotonic() < deadline, f"reading {topic} back took over {timeout} s"
            for msg in consumer.consume(10_000, 1.0):
                if msg.error():
                    done.add(msg.partition())
                    continue
                value, key = msg.value(), msg.key()
                if key == HEARTBEAT_KEY.encode():
                    assert value == b"" and (Header.KIND, Kind.HEARTBEAT) in msg.headers()
                    heartbeats[msg.partition()] += 1
                    continue
                obj = json.loads(value)
                assert key == obj["server_name"].encode()
                ms = int(datetime.fromisoformat(obj["meta"]["dt"]).timestamp() * 1000)
                assert msg.timestamp()[1] == ms
                windows.setdefault(ms - ms % window_ms, Counter())[obj["server_name"]] += 1
                rows = breakdowns.setdefault(ms - ms % window_ms, {})
                for wiki in (obj["server_name"], ""):
                    rows.setdefault(wiki, Counter()).update(breakdown_row(obj))
    finally:
        consumer.close()
    return Written(windows, heartbeats, ends, breakdowns)


# ---------------------------------------------------------------- running and reading both


def naive_windows(client: redis.Redis, prefix: str) -> Windows:
    """Every window the naive job wrote: ``<prefix>window:<start>`` sorted sets."""
    keys = KeyLayout(prefix)
    found: Windows = {}
    for raw in client.scan_iter(match=keys.window_prefix + "*", count=1000):
        start = int(raw.decode().removeprefix(keys.window_prefix))
        key = keys.window(start)
        members = cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True))
        found[start] = Counter({m.decode(): int(score) for m, score in members})
    return found


def committed_all(kafka: str, group: str, topic: str, ends: dict[int, int]) -> bool:
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": group})
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in ends], timeout=10)
        return all(tp.offset >= ends[tp.partition] for tp in committed)
    finally:
        consumer.close()


def diff(left: Windows, right: Windows) -> list[str]:
    """Window by window, where two sets of windows disagree (empty when they agree)."""
    lines = []
    for start in sorted(set(left) | set(right)):
        a, b = left.get(start), right.get(start)
        if a is None or b is None:
            lines.append(f"window {start}: only in {'left' if b is None else 'right'}")
        elif a != b:
            rows = {k: (a[k], b[k]) for k in set(a) | set(b) if a[k] != b[k]}
            lines.append(
                f"window {start}: {len(rows)} wikis differ: {dict(sorted(rows.items())[:8])}"
            )
    return lines


def run_both(
    services: Services,
    names: Names,
    workdir: Path,
    client: redis.Redis,
    written: Written,
    window_s: int,
    grace_s: int,
    timeout: float,
) -> tuple[Windows, Windows, list[int], list[int]]:
    """Our processor and the naive job on the topic until both have written every window.

    Returns ours (every published window), the naive job's, our complete starts and
    our partial starts.
    """
    naive_prefix = f"test:{names.suffix}-naive:"
    naive_group = f"{names.group}-naive"
    pipeline = Pipeline(
        services,
        names,
        workdir,
        overrides={"WINDOW_SECONDS": str(window_s), "GRACE_SECONDS": str(grace_s)},
    )
    ours = WindowStore(client, KeyLayout(names.prefix))
    wanted = set(written.windows)
    try:
        processor = pipeline.processor()
        naive = Service(
            "benchmarks.naive_app",
            pipeline.env(
                CONSUMER_GROUP=naive_group,
                STATE_DIR=str(workdir / "state-naive"),
                REDIS_KEY_PREFIX=naive_prefix,
            ),
            workdir / "naive.log",
        ).start()
        pipeline.started.append(naive)

        def published() -> set[int]:
            return set(ours.starts(1_000_000)) | set(ours.partial_starts(1_000_000))

        wait_for(
            lambda: (
                wanted <= published()
                and committed_all(services.kafka, naive_group, names.topic, written.ends)
            ),
            timeout,
            lambda: (
                f"both jobs to write windows {sorted(wanted)}: ours has {sorted(published())}, "
                f"naive {sorted(naive_windows(client, naive_prefix))}\n{pipeline.logs()}"
            ),
            interval=1.0,
        )
        assert processor.stop() == 0, pipeline.logs()
        assert naive.stop() == 0, pipeline.logs()
        complete, partial = ours.starts(1_000_000), ours.partial_starts(1_000_000)
        counts = ours.counts(sorted(set(complete) | set(partial)))
        # by design: the naive job has no completeness index
        naive_keys = KeyLayout(naive_prefix)
        assert not client.exists(naive_keys.complete, naive_keys.partial, naive_keys.meta)
        return (
            {start: Counter(rows) for start, rows in counts.items()},
            naive_windows(client, naive_prefix),
            complete,
            partial,
        )
    finally:
        pipeline.stop_all()


def assert_same_windows(
    written: Written,
    ours: Windows,
    naive: Windows,
    complete: list[int],
    partial: list[int],
    client: redis.Redis,
    prefix: str,
) -> None:
    expected = written.windows
    first = min(expected)
    # every partition holds its start heartbeat and the two closing ones
    assert written.heartbeats == Counter({p: 3 for p in range(PARTITIONS)}), written.heartbeats

    # by design: our first window is partial, not complete; every other one is complete
    assert partial == [first], f"partial windows {partial}, expected only the first, {first}"
    assert first not in complete
    assert complete == sorted(expected)[1:], f"complete {complete}, expected {sorted(expected)[1:]}"

    # by design: heartbeats never count, in either job
    for name, windows in (("ours", ours), ("naive", naive)):
        assert not [s for s, rows in windows.items() if HEARTBEAT_KEY in rows], name

    # the oracle: every window, the partial first one included, identical in both
    mismatch = diff(ours, naive)
    assert not mismatch, "ours (left) and the naive job (right) differ:\n" + "\n".join(mismatch)
    # and both equal the independent count of what the topic holds
    mismatch = diff(ours, expected)
    assert not mismatch, "ours (left) and the topic's count (right) differ:\n" + "\n".join(mismatch)
    # and so do our breakdowns, every wiki's and all wikis', in every window
    for start, rows in written.breakdowns.items():
        assert window_breakdowns(client, prefix, start) == rows, start


# ---------------------------------------------------------------- the cases


def test_the_recording_gives_the_same_windows_as_the_textbook_job(
    services, names, tmp_path, redis_client
):
    """The bundled recording (384 events of 30 wikis over 9 s, 60 of them out of order by
    up to 51 ms): 3 s windows, 1 s grace, so that it spans four windows."""
    window_s, grace_s = 3, 1
    create_topic(services.kafka, names.topic)
    write_recording(
        services.kafka, names.topic, load_events(RECENTCHANGE), window_s * 1000, grace_s * 1000
    )
    written = count_topic(services.kafka, names.topic, window_s * 1000)
    assert sum(sum(rows.values()) for rows in written.windows.values()) == 384
    assert len(written.windows) == 4

    ours, naive, complete, partial = run_both(
        services, names, tmp_path, redis_client, written, window_s, grace_s, timeout=90
    )
    assert_same_windows(written, ours, naive, complete, partial, redis_client, names.prefix)


#: An hour of the recorded shape at its 43 events/s.
HOUR = 155_000


def test_an_hour_of_the_recorded_shape_gives_the_same_windows_as_the_textbook_job(
    services, names, tmp_path, redis_client
):
    """`benchmarks.data.preload`: an hour of events of the recording's wikis and shares,
    written as the producer writes them; 30 s windows, 5 s grace (the defaults)."""
    window_s, grace_s = 30, 5
    create_topic(services.kafka, names.topic)
    generated = preload(
        services.kafka, names.topic, HOUR, window_s * 1000, grace_s * 1000, PARTITIONS
    )
    written = count_topic(services.kafka, names.topic, window_s * 1000)
    assert written.windows == generated  # the generator's own tally agrees with the topic
    assert sum(sum(rows.values()) for rows in written.windows.values()) == HOUR

    ours, naive, complete, partial = run_both(
        services, names, tmp_path, redis_client, written, window_s, grace_s, timeout=180
    )
    assert_same_windows(written, ours, naive, complete, partial, redis_client, names.prefix)
