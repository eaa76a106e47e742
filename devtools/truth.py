"""The independent ground truth: what the pipeline must count, written again with the
standard library from the README's rules, sharing no code with the product."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any


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


def counted(payloads: Iterable[bytes], window_ms: int) -> Iterator[tuple[int, str, bytes]]:
    """``(window start, server name, payload)`` of each event that counts, in order: a
    copy (the same identity in its wiki's window) counts once."""
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
        yield start, name, raw


def truth(payloads: Iterable[bytes], window_ms: int) -> dict[int, Counter[str]]:
    """Expected counts per window, computed independently of the code under test."""
    windows: dict[int, Counter[str]] = {}
    for start, name, _ in counted(payloads, window_ms):
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
    for start, name, raw in counted(payloads, window_ms):
        row = breakdown_row(json.loads(raw))
        for wiki in (name, ""):
            windows.setdefault(start, {}).setdefault(wiki, Counter()).update(row)
    return windows


def invalid(payloads: Iterable[bytes]) -> set[bytes]:
    """The payloads that must end in the dead-letter topic."""
    return {raw for raw in payloads if judge(raw) == "invalid"}
