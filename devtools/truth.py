"""The independent ground truth: what the pipeline must count, written again with the
standard library from the README's rules, sharing no code with the product."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
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


def invalid(payloads: Iterable[bytes]) -> set[bytes]:
    """The payloads that must end in the dead-letter topic."""
    return {raw for raw in payloads if judge(raw) == "invalid"}
