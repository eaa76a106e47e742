"""The event contract between the producer and the processor.

Both services judge a Wikimedia ``recentchange`` payload with `parse` so that they can
never disagree about what counts. The producer parses every event once, at the edge,
and writes the verdict into the Kafka record (key, timestamp and `Header` values); the
processor's hot path then reads those hints instead of decoding ~1 KB of JSON again.
Records without hints (written by another tool) are parsed by the processor itself.

What counts (see the README): a JSON object with a usable ``server_name`` that is not a
canary (``meta.domain == "canary"``, which Wikimedia injects for monitoring). Event time
is ``meta.dt`` (ISO 8601), falling back to ``timestamp`` (seconds). The identity used to
drop duplicates is ``meta.id``, or a digest of the raw bytes when an event has none.

What a breakdown counts of an event (its *facts*, `facts_of`): its kind of change
(``type``: one of `CHANGE_TYPES`, anything else is ``other``), whether a bot made it
(``bot`` is ``true``; anything else is a human), and its size change in bytes
(``length.new - length.old``, ``old`` absent or null for a page creation) when it has
lengths. The producer writes them in one small header (`Header.FACTS`), so the
processor counts breakdowns without decoding the body either.

An event dated more than ``MAX_FUTURE_SKEW_SECONDS`` past wall time does not count
either: event time only moves forward, so one such event, trusted, would make every
later event late (issue #25, hole 1). `parse` reads no clock itself: callers pass the
latest believable time (`latest_believable_ms`), so producer and processor apply the
same rule, and tests pin it.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

#: Kafka key of the producer's per-partition heartbeats. The NUL byte keeps it apart
#: from every server name: names with control characters are rejected by `parse`.
HEARTBEAT_KEY: Final = "\x00heartbeat"
#: Kafka key of records whose payload has no usable ``server_name``.
UNKEYED_KEY: Final = "\x00unkeyed"
#: librdkafka's ``partitioner`` for every writer of the raw topic: Java's murmur2 (null
#: keys at random), the hash Quix Streams' producer uses too. With librdkafka's default
#: (CRC32) a wiki re-keyed by the processor would land in another partition than the
#: producer's records of it, and be counted in two partitions (issue #25, hole 2).
PARTITIONER: Final = "murmur2_random"

#: Longest server name accepted (a DNS name has at most 253 characters).
MAX_SERVER_NAME = 253
#: Event times outside [2001-01-01, 2100-01-01) are refused as nonsense.
MIN_TIME_MS: Final = 978_307_200_000
MAX_TIME_MS: Final = 4_102_444_800_000
#: Default of ``MAX_FUTURE_SKEW_SECONDS``: how far past wall time an event may be dated
#: (clocks of hosts disagree a little; a day ahead is a broken or hostile upstream).
DEFAULT_MAX_FUTURE_SKEW_SECONDS: Final = 300.0
#: Every reason given for an event dated too far ahead starts with this.
FUTURE_REASON: Final = "event time in the future"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class Header:
    """Kafka header names written by the producer (values are UTF-8 bytes)."""

    SSE_ID: Final = "sse-id"  # the SSE ``id`` of the event, verbatim
    KIND: Final = "wp-kind"  # one of `Kind`
    EVENT_ID: Final = "wp-event-id"  # dedup identity (meta.id or a digest)
    REASON: Final = "wp-reason"  # why a record is invalid
    SEQ: Final = "wp-seq"  # producer sequence number of this event
    ACKED_SEQ: Final = "wp-acked-seq"  # every event up to this seq was acked ...
    ACKED_ID: Final = "wp-acked-id"  # ... and this is that event's SSE id
    FACTS: Final = "wp-facts"  # what a breakdown counts of an event (`facts_of`)


class Kind:
    """Values of the `Header.KIND` header."""

    EVENT: Final = b"event"
    CANARY: Final = b"canary"
    INVALID: Final = b"invalid"
    HEARTBEAT: Final = b"heartbeat"


def heartbeat_record(partition: int, time_ms: int) -> dict[str, Any]:
    """`confluent_kafka.Producer.produce` arguments (topic aside) of one heartbeat: an
    empty record keyed `HEARTBEAT_KEY`, sent to one partition, stamped with the stream's
    event time. Everything that writes the raw topic sends heartbeats in this shape."""
    return {
        "value": b"",
        "key": HEARTBEAT_KEY.encode(),
        "partition": partition,
        "timestamp": time_ms,
        "headers": [(Header.KIND, Kind.HEARTBEAT)],
    }


@dataclass(slots=True)
class Event:
    """An event that counts once in the window of ``time_ms``.

    The verdicts are not frozen: one is made per event on the producer's hot path, and a
    frozen dataclass's ``__init__`` costs about 3.6 times as much. Treat them as values.
    """

    server_name: str
    time_ms: int
    event_id: str
    #: what the breakdowns count of it (`facts_of`), as the `Header.FACTS` value
    facts: bytes


@dataclass(slots=True)  # not frozen: see `Event`
class Canary:
    """A monitoring event injected by Wikimedia; never counted."""

    time_ms: int | None


@dataclass(slots=True)  # not frozen: see `Event`
class Invalid:
    """A payload that cannot be counted; ``reason`` goes into the dead-letter header."""

    reason: str


Parsed = Event | Canary | Invalid


def latest_believable_ms(now_ms: int, max_future_skew_seconds: float) -> int:
    """The latest event time believable at wall time ``now_ms`` (epoch ms)."""
    return now_ms + int(max_future_skew_seconds * 1000)


def future_problem(time_ms: int, latest_ms: int | None) -> str | None:
    """Why ``time_ms`` is not believable (later than ``latest_ms``), or None."""
    if latest_ms is None or time_ms <= latest_ms:
        return None
    ahead_s = (time_ms - latest_ms) / 1000
    return (
        f"{FUTURE_REASON}: {time_ms} ms is {ahead_s:.0f} s later than wall time "
        "plus MAX_FUTURE_SKEW_SECONDS allows"
    )


def parse(data: bytes, latest_ms: int | None = None) -> Parsed:
    """Judge one raw ``recentchange`` payload. Never raises.

    ``latest_ms`` is the latest believable event time (`latest_believable_ms`): an
    event dated later is `Invalid`, and a canary's later time is dropped. None applies
    no bound (tools reading history).
    """
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return Invalid(f"not JSON: {exc}"[:200])
    if not isinstance(obj, dict):
        return Invalid(f"not a JSON object but {type(obj).__name__}")
    meta = obj.get("meta")
    if not isinstance(meta, dict):
        meta = {}
    time_ms = event_time_ms(obj, meta)
    if meta.get("domain") == "canary":
        if isinstance(time_ms, int) and future_problem(time_ms, latest_ms) is None:
            return Canary(time_ms)
        return Canary(None)
    server_name = obj.get("server_name")
    problem = server_name_problem(server_name)
    if problem:
        return Invalid(problem)
    if isinstance(time_ms, str):
        return Invalid(time_ms)
    future = future_problem(time_ms, latest_ms)
    if future:
        return Invalid(future)
    meta_id = meta.get("id")
    event_id = meta_id if isinstance(meta_id, str) and meta_id else digest_id(data)
    assert isinstance(server_name, str)
    return Event(server_name, time_ms, event_id, facts_of(obj))


#: The kinds of change a breakdown counts (Wikimedia's ``type``), in the order of the
#: breakdown fields (`wikipulse.store.values.BREAKDOWN`); any other type counts as ``other``.
CHANGE_TYPES: Final = ("edit", "new", "log", "categorize", "external", "other")
#: One letter per change type in a facts value, in `CHANGE_TYPES` order.
TYPE_LETTERS: Final = b"enlcxo"
_LETTER = {name: TYPE_LETTERS[i : i + 1].decode() for i, name in enumerate(CHANGE_TYPES)}
_NO_SIZE = {(t, b): (t + b).encode() for t in _LETTER.values() for b in "bh"}
#: Sizes outside [0, MAX_PAGE_BYTES) are not believed (MediaWiki pages stay far below).
MAX_PAGE_BYTES: Final = 1 << 31


def facts_of(obj: dict[str, Any]) -> bytes:
    """The `Header.FACTS` value of a countable event: ASCII, at most a dozen bytes.

    One letter of `TYPE_LETTERS` (the change type), ``b`` (a bot) or ``h`` (a human),
    then the size change in bytes as a signed decimal when the event has lengths:
    ``eb-1014`` is a bot's edit that removed 1014 bytes, ``nh5230`` a human's new page
    of 5230 bytes, ``lh`` a human's log action (no lengths). `read_facts` reverses it.
    """
    kind = obj.get("type")
    letter = _LETTER.get(kind, "o") if isinstance(kind, str) else "o"
    bot = "b" if obj.get("bot") is True else "h"
    length = obj.get("length")
    if isinstance(length, dict):
        new, old = length.get("new"), length.get("old")
        if old is None:
            old = 0  # a page creation: nothing before it
        if (
            type(new) is int
            and type(old) is int
            and 0 <= new < MAX_PAGE_BYTES
            and 0 <= old < MAX_PAGE_BYTES
        ):
            return f"{letter}{bot}{new - old}".encode()
    return _NO_SIZE[letter, bot]


def read_facts(value: bytes | None) -> tuple[int, bool, int | None]:
    """``(index in CHANGE_TYPES, made by a bot, size change or None)`` of a facts value
    (`facts_of`). Never raises: a value another tool wrote wrong counts as a human's
    change of type ``other`` without a size, so that the breakdowns still add up to the
    count."""
    if not value:
        return len(CHANGE_TYPES) - 1, False, None
    kind = TYPE_LETTERS.find(value[:1])
    if kind < 0:
        kind = len(CHANGE_TYPES) - 1
    delta: int | None = None
    if len(value) > 2:
        try:
            delta = int(value[2:])
        except ValueError:
            delta = None
        else:
            if not -MAX_PAGE_BYTES < delta < MAX_PAGE_BYTES:
                delta = None
    return kind, value[1:2] == b"b", delta


def digest_id(data: bytes) -> str:
    """A stand-in identity for ``data``: for events without ``meta.id``, and for ids too
    long for the producer to remember whole (`producer.copies`)."""
    return "sha1:" + hashlib.sha1(data, usedforsecurity=False).hexdigest()


def server_name_problem(server_name: Any) -> str | None:
    """Why ``server_name`` cannot be a leaderboard member, or None when it can."""
    if server_name is None:
        return "server_name missing"
    if not isinstance(server_name, str):
        return f"server_name is {type(server_name).__name__}, not a string"
    if not server_name:
        return "server_name is empty"
    if len(server_name) > MAX_SERVER_NAME:
        return f"server_name longer than {MAX_SERVER_NAME} characters"
    if _CONTROL.search(server_name):
        return "server_name has control characters"
    return None


def event_time_ms(obj: dict[str, Any], meta: dict[str, Any]) -> int | str:
    """The event's own time in epoch ms, or a reason string when it has none usable.

    ``meta.dt`` is when the change happened; the top-level ``timestamp`` is seconds
    and can lag it by up to ~18 s, so it is only the fallback.
    """
    dt = meta.get("dt")
    ms: int | None = None
    if isinstance(dt, str):
        try:
            parsed = datetime.fromisoformat(dt)
        except ValueError:
            return f"meta.dt is not ISO 8601: {dt[:40]!r}"
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        ms = int(parsed.timestamp() * 1000)
    elif dt is not None:
        return f"meta.dt is {type(dt).__name__}, not a string"
    else:
        ts = obj.get("timestamp")
        if isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts):
            ms = int(ts * 1000)
    if ms is None:
        return "no event time (meta.dt or timestamp)"
    if not MIN_TIME_MS <= ms < MAX_TIME_MS:
        return f"event time out of range: {ms} ms"
    return ms
