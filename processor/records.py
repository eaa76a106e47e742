"""What the processor makes of each raw record: the verdict that routes it.

The producer's hints (key, timestamp, ``wp-*`` headers) make the common case cheap:
no JSON is decoded on the hot path, the breakdowns' facts included (``wp-facts``).
Records without hints — written by another tool, or by an older producer (one that
wrote no ``wp-facts``) — are judged here with the same `wikipulse.events.parse`, so
both paths reach the same verdict and the same facts for the same payload.

Neither path trusts a time far in the future (issue #25, hole 1): event time only
moves forward, so one record dated a day ahead would make every later event late. A
record dated more than ``MAX_FUTURE_SKEW_SECONDS`` past wall time is invalid, whoever
wrote it and whatever its hints say.
"""

from __future__ import annotations

import time
from typing import Any, Final

from wikipulse.events import (
    DEFAULT_MAX_FUTURE_SKEW_SECONDS,
    HEARTBEAT_KEY,
    Canary,
    Event,
    Header,
    Kind,
    future_problem,
    latest_believable_ms,
    parse,
)

_HEARTBEAT = HEARTBEAT_KEY.encode()


class Verdict:
    """What a record is; also the label of the ``wikipulse_records_total`` metric."""

    EVENT: Final = "event"  # counts once in its window
    HEARTBEAT: Final = "heartbeat"  # moves event time, never counted
    CANARY: Final = "canary"  # Wikimedia's monitoring event, never counted
    INVALID: Final = "invalid"  # to the dead-letter topic, with the reason
    REKEY: Final = "rekey"  # countable, but keyed by something else than its server name
    ALL: Final = (EVENT, HEARTBEAT, CANARY, INVALID, REKEY)


#: A judged record: ``(verdict, time_ms, raw, reason, facts)``.
#:
#: A plain tuple of built-ins on purpose: Quix copies the value once per record where
#: the pipeline branches, and a tuple of built-ins is the cheapest thing to copy
#: (docs/decisions.md has the measurement). ``raw`` is what dead letters and re-keyed
#: records write out byte for byte; every other record leaves it empty, so the copy
#: stays small. ``facts`` is what the breakdowns count of an event
#: (`wikipulse.events.facts_of`), empty for every other verdict.
Record = tuple[str, int, bytes, str, bytes]
# positions in a Record
VERDICT: Final = 0
TIME_MS: Final = 1
RAW: Final = 2
REASON: Final = 3
FACTS: Final = 4


class FutureSkew:
    """``MAX_FUTURE_SKEW_SECONDS`` as `classify` applies it; `processor.app` sets it from
    the settings (Quix calls `classify` with the record alone)."""

    seconds: float = DEFAULT_MAX_FUTURE_SKEW_SECONDS


def header(headers: Any, name: str) -> bytes | None:
    if headers:
        for key, value in headers:
            if key == name:
                return value if isinstance(value, bytes) else str(value).encode()
    return None


def classify(
    value: Any, key: Any, timestamp: int, headers: Any, now_ms: int | None = None
) -> Record:
    """Judge one raw record (Quix calls this with ``metadata=True``). Never raises.

    ``now_ms`` is wall time (read from the clock when None; tests pass it).
    """
    raw = value if isinstance(value, bytes) else b""
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    latest_ms = latest_believable_ms(now_ms, FutureSkew.seconds)
    kind = header(headers, Header.KIND)
    if timestamp > latest_ms and kind in (Kind.EVENT, Kind.HEARTBEAT):
        # a hint is no better than its timestamp: it would move the partition's clock
        return Verdict.INVALID, now_ms, raw, future_problem(timestamp, latest_ms) or "", b""
    if kind is not None:
        if kind == Kind.EVENT and key:
            if header(headers, Header.EVENT_ID):  # the hot path: the body is not needed
                facts = header(headers, Header.FACTS)
                if facts is not None:  # else an older producer's record: parsed below
                    return Verdict.EVENT, timestamp, b"", "", facts
        elif kind == Kind.HEARTBEAT and key == _HEARTBEAT:
            return Verdict.HEARTBEAT, timestamp, b"", "", b""
        elif kind == Kind.CANARY:
            return Verdict.CANARY, timestamp, b"", "", b""
        elif kind == Kind.INVALID:
            reason = header(headers, Header.REASON) or b"invalid (no reason given)"
            return Verdict.INVALID, timestamp, raw, reason.decode("utf-8", "replace"), b""
    if value is None:
        return Verdict.INVALID, timestamp, raw, "empty record (no value)", b""
    if not isinstance(value, bytes):
        return Verdict.INVALID, timestamp, raw, "value is not bytes", b""
    parsed = parse(value, latest_ms)
    if isinstance(parsed, Event):
        verdict = Verdict.EVENT if key == parsed.server_name.encode() else Verdict.REKEY
        return verdict, parsed.time_ms, raw, "", parsed.facts
    if isinstance(parsed, Canary):
        return Verdict.CANARY, parsed.time_ms or timestamp, b"", "", b""
    return Verdict.INVALID, timestamp, raw, parsed.reason, b""
