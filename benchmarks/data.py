"""Benchmark input in three shapes, ~1 KB bodies from recorded events, hours of event time.

- ``recorded``: the real stream's shape, the bundled recording's wikis with their shares
  (commons.wikimedia.org 40 %, www.wikidata.org 14 %, en.wikipedia.org 10 %, 30 wikis)
  at its rate (43 events/s of event time);
- ``burst``: the same, plus one wiki at 50 events/s for ten minutes (a bot run);
- ``zipf800``: 800 wikis with a Zipf skew over 3 hours (the busiest gets about a
  seventh): many more keys than the real stream, far less concentrated.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
from confluent_kafka import Producer

from devtools.recordings import DATA, load_events
from devtools.shapes import recorded_shares
from wikipulse.events import PARTITIONER, Header, Kind, facts_of, heartbeat_record


def start_ms(hours: float) -> int:
    """Event times end about now: the broker deletes records older than its retention."""
    return (int(time.time() * 1000) - int(hours * 3600 * 1000)) // 30_000 * 30_000


def wiki_names(count: int) -> list[str]:
    recorded = sorted(
        {orjson.loads(e)["server_name"] for e in load_events(DATA / "recentchange-2026-06-20.sse")}
    )
    names = list(
        dict.fromkeys(["commons.wikimedia.org", "www.wikidata.org", "en.wikipedia.org", *recorded])
    )
    projects = [
        "wikipedia",
        "wiktionary",
        "wikisource",
        "wikibooks",
        "wikiquote",
        "wikinews",
        "wikivoyage",
    ]
    i = 0
    while len(names) < count:
        names.append(f"l{i % 300}.{projects[i // 300 % len(projects)]}.org")
        i += 1
    return names[:count]


SHAPES = ("recorded", "burst", "zipf800")
RECORDED_RATE = 43.0  # events per second of event time in the bundled recording
BURST_WIKI, BURST_RATE, BURST_SECONDS = "fr.wikipedia.org", 50.0, 600


def schedule(n: int, shape: str, rng: random.Random) -> tuple[list[str], list[int]]:
    """The wiki and the event time (ms) of each of ``n`` events of ``shape``."""
    if shape == "zipf800":
        names = wiki_names(800)
        weights = [1 / (rank + 1) ** 1.1 for rank in range(len(names))]
        span = 3 * 3600 * 1000.0
        first = start_ms(3)
        return rng.choices(names, weights, k=n), [first + int(i * span / n) for i in range(n)]
    shares = recorded_shares()
    names, weights = list(shares), list(shares.values())
    chosen = rng.choices(names, weights, k=n)
    if shape == "recorded":
        hours = n / RECORDED_RATE / 3600
        first, span = start_ms(hours), hours * 3600 * 1000
        return chosen, [first + int(i * span / n) for i in range(n)]
    if shape != "burst":
        raise ValueError(f"unknown shape {shape!r}: one of {', '.join(SHAPES)}")
    extra = int(BURST_RATE * BURST_SECONDS)
    base = n - extra
    chosen = chosen[:base]
    hours = base / RECORDED_RATE / 3600
    first = start_ms(hours)
    times = [first + int(i * 1000 / RECORDED_RATE) for i in range(base)]
    burst_from = first + (int(hours * 3600 * 1000) - BURST_SECONDS * 1000) // 2
    times += [burst_from + int(i * 1000 / BURST_RATE) for i in range(extra)]
    chosen += [BURST_WIKI] * extra
    order = sorted(range(n), key=times.__getitem__)  # one stream, in event-time order
    return [chosen[i] for i in order], [times[i] for i in order]


def events(
    n: int, shape: str = "recorded", seed: int = 7
) -> Iterator[tuple[str, bytes, int, str, bytes]]:
    """(server_name, body, event time ms, meta.id, facts) for ``n`` events of ``shape``
    (facts: the producer's ``wp-facts`` header, `wikipulse.events.facts_of`)."""
    rng = random.Random(seed)
    templates = [orjson.loads(e) for e in load_events(DATA / "recentchange-2026-06-20.sse")]
    chosen, times = schedule(n, shape, rng)
    for i in range(n):
        time_ms = times[i]
        template = templates[i % len(templates)]
        obj = dict(template)
        meta = dict(template["meta"])
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        meta["id"] = event_id
        meta["dt"] = (
            datetime.fromtimestamp(time_ms / 1000, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        meta["domain"] = chosen[i]
        obj["meta"] = meta
        obj["server_name"] = chosen[i]
        obj["timestamp"] = time_ms // 1000
        yield chosen[i], orjson.dumps(obj), time_ms, event_id, facts_of(obj)


def heartbeat_times(last_ms: int, window_ms: int, grace_ms: int) -> tuple[int, int]:
    """When `preload` stamps the heartbeats it ends every partition with."""
    return last_ms, last_ms + window_ms + grace_ms + 2000


def preload(
    kafka: str,
    topic: str,
    n: int,
    window_ms: int,
    grace_ms: int,
    partitions: int,
    shape: str = "recorded",
) -> dict[int, dict[str, int]]:
    """Write ``n`` events as WikiPulse's producer would (key, timestamp, hint headers), then
    heartbeats to every partition. Returns the expected counts per window.

    Two heartbeats per partition, as the live producer's stream of them would leave it:
    one at the last event's time, in the last window, and one past that window's grace,
    which closes it. The first matters: a partition's progress mark moves only when a
    window *in that partition* closes, so a partition without events in the last window
    needs a heartbeat there, or that window would never be complete.
    """
    # idempotence keeps each partition in the order written through retries: on a broker
    # just started, a retried batch once landed behind later ones, 658 records more than
    # the grace behind their partition, which the processor rightly counted as late
    producer = Producer(
        {
            "bootstrap.servers": kafka,
            "enable.idempotence": True,
            "partitioner": PARTITIONER,  # as the producer: a key's partition as Quix's
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    expected: dict[int, dict[str, int]] = {}
    last = 0
    for name, body, time_ms, event_id, facts in events(n, shape):
        if not last:  # as the producer: the stream's start, marked in every partition
            for partition in range(partitions):
                producer.produce(topic, **heartbeat_record(partition, time_ms))
        headers = [
            (Header.KIND, Kind.EVENT),
            (Header.EVENT_ID, event_id.encode()),
            (Header.FACTS, facts),
        ]
        while True:
            try:
                producer.produce(topic, body, name.encode(), timestamp=time_ms, headers=headers)
                break
            except BufferError:
                producer.poll(0.1)
        window = expected.setdefault(time_ms - time_ms % window_ms, {})
        window[name] = window.get(name, 0) + 1
        last = time_ms
    for timestamp in heartbeat_times(last, window_ms, grace_ms):
        for partition in range(partitions):
            producer.produce(topic, **heartbeat_record(partition, timestamp))
    producer.flush(120)
    return expected
