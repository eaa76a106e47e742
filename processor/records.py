"""What the processor makes of each raw record: the verdict that routes it.

The producer's hints (key, timestamp, ``wp-*`` headers) make the common case cheap:
no JSON is decoded on the hot path. Records without hints — written by another tool,
or by an older producer — are judged here with the same `wikipulse.events.parse`, so
both paths reach the same verdict for the same payload.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from wikipulse.events import HEARTBEAT_KEY, Canary, Event, Header, Kind, parse

_HEARTBEAT = HEARTBEAT_KEY.encode()


class Verdict(enum.Enum):
    EVENT = "event"  # counts once in its window
    HEARTBEAT = "heartbeat"  # moves event time, never counted
    CANARY = "canary"  # Wikimedia's monitoring event, never counted
    INVALID = "invalid"  # to the dead-letter topic, with the reason
    REKEY = "rekey"  # countable, but keyed by something else than its server name


@dataclass(slots=True)
class Record:
    """A judged record. ``raw`` is what dead letters and re-keyed records write out byte
    for byte; records judged by the producer's hints as events or heartbeats leave it
    empty, because every branch after the first pickles a copy of the value."""

    verdict: Verdict
    raw: bytes
    time_ms: int
    event_id: str = ""
    server_name: str = ""
    reason: str = ""


def header(headers: Any, name: str) -> bytes | None:
    if headers:
        for key, value in headers:
            if key == name:
                return value if isinstance(value, bytes) else str(value).encode()
    return None


def classify(value: Any, key: Any, timestamp: int, headers: Any) -> Record:
    """Judge one raw record (Quix calls this with ``metadata=True``). Never raises."""
    raw = value if isinstance(value, bytes) else b""
    kind = header(headers, Header.KIND)
    if kind is not None:
        if kind == Kind.EVENT and key:
            event_id = header(headers, Header.EVENT_ID)
            if event_id:  # the hot path: the body is not needed (nor copied) any further
                return Record(Verdict.EVENT, b"", timestamp, event_id.decode("utf-8", "replace"))
        elif kind == Kind.HEARTBEAT and key == _HEARTBEAT:
            return Record(Verdict.HEARTBEAT, b"", timestamp)
        elif kind == Kind.CANARY:
            return Record(Verdict.CANARY, raw, timestamp)
        elif kind == Kind.INVALID:
            reason = header(headers, Header.REASON) or b"invalid (no reason given)"
            return Record(Verdict.INVALID, raw, timestamp, reason=reason.decode("utf-8", "replace"))
    if value is None:
        return Record(Verdict.INVALID, raw, timestamp, reason="empty record (no value)")
    if not isinstance(value, bytes):
        return Record(Verdict.INVALID, raw, timestamp, reason="value is not bytes")
    parsed = parse(value)
    if isinstance(parsed, Event):
        verdict = Verdict.EVENT if key == parsed.server_name.encode() else Verdict.REKEY
        return Record(verdict, raw, parsed.time_ms, parsed.event_id, parsed.server_name)
    if isinstance(parsed, Canary):
        return Record(Verdict.CANARY, raw, parsed.time_ms or timestamp)
    return Record(Verdict.INVALID, raw, timestamp, reason=parsed.reason)
