"""Recorded Wikimedia streams (``devtools/data/``) and how to replay them as live.

The recordings are real: see ``devtools/data/README.md`` for where each comes from.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path

import orjson

DATA = Path(__file__).resolve().parent / "data"
#: The current event shape: 384 events of 30 wikis, a raw SSE capture.
RECENTCHANGE = DATA / "recentchange-2026-06-20.sse"
#: The 2018 event shape: 400 Wikidata events as JSON lines.
WIKIDATA_2018 = DATA / "recentchange-wikidata-2018.jsonl"


def load_events(path: Path) -> list[bytes]:
    """The ``data`` payloads of a recorded stream: raw SSE capture or JSON lines.

    A capture may end without its closing blank line (the bundled one does): the last
    event is kept all the same, since a file, unlike a connection, is complete.
    """
    raw = path.read_bytes()
    if path.suffix in (".jsonl", ".json"):
        return [line for line in raw.splitlines() if line.strip()]
    events: list[bytes] = []
    for block in re.split(rb"\r?\n\r?\n", raw):
        data = [
            line[5:].removeprefix(b" ") for line in block.splitlines() if line.startswith(b"data:")
        ]
        if data:
            events.append(b"\n".join(data))
    return events


def restamp(data: bytes, when: datetime, cycle: int) -> bytes:
    """``data`` as if it happened at ``when``; on later cycles also with a new ``meta.id``.

    Payloads that are not JSON objects are replayed untouched (they test bad input).
    """
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    if not isinstance(obj, dict):
        return data
    meta = obj.get("meta")
    if isinstance(meta, dict):
        meta["dt"] = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if cycle and isinstance(meta.get("id"), str):
            meta["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{meta['id']}/{cycle}"))
    if "timestamp" in obj:
        obj["timestamp"] = int(when.timestamp())
    return orjson.dumps(obj)
