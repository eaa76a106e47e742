"""Realistic input: ~1 KB bodies from recorded events, ~800 wikis with Zipf skew, hours of time."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
from confluent_kafka import Producer

from devtools.recordings import DATA, load_events
from wikipulse.events import HEARTBEAT_KEY, Header, Kind


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


def events(
    n: int, wikis: int = 800, hours: float = 3.0, seed: int = 7
) -> Iterator[tuple[str, bytes, int, str]]:
    """(server_name, body, event time ms, meta.id) for ``n`` events spread over ``hours``."""
    rng = random.Random(seed)
    templates = [orjson.loads(e) for e in load_events(DATA / "recentchange-2026-06-20.sse")]
    names = wiki_names(wikis)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(names))]
    chosen = rng.choices(names, weights, k=n)
    span = hours * 3600 * 1000
    first = start_ms(hours)
    for i in range(n):
        time_ms = first + int(i * span / n)
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
        yield chosen[i], orjson.dumps(obj), time_ms, event_id


def preload(
    kafka: str, topic: str, n: int, window_ms: int, grace_ms: int, partitions: int
) -> dict[int, dict[str, int]]:
    """Write ``n`` events as WikiPulse's producer would (key, timestamp, hint headers), then a
    heartbeat per partition past the last window. Returns the expected counts per window."""
    producer = Producer(
        {
            "bootstrap.servers": kafka,
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    expected: dict[int, dict[str, int]] = {}
    last = 0
    for name, body, time_ms, event_id in events(n):
        headers = [(Header.KIND, Kind.EVENT), (Header.EVENT_ID, event_id.encode())]
        while True:
            try:
                producer.produce(topic, body, name.encode(), timestamp=time_ms, headers=headers)
                break
            except BufferError:
                producer.poll(0.1)
        window = expected.setdefault(time_ms - time_ms % window_ms, {})
        window[name] = window.get(name, 0) + 1
        last = time_ms
    for partition in range(partitions):
        producer.produce(
            topic,
            b"",
            HEARTBEAT_KEY.encode(),
            partition=partition,
            timestamp=last + window_ms + grace_ms + 2000,
            headers=[(Header.KIND, Kind.HEARTBEAT)],
        )
    producer.flush(120)
    return expected
