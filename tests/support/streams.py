"""What the end-to-end tests feed the pipeline: live-stamped recorded events and noise.

Every stream is stamped near "now", because the broker deletes records older than its
retention and because the processor treats events behind its watermark as late.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime

from devtools.recordings import DATA, load_events, restamp
from devtools.replay import ReplayServer

RECORDED = load_events(DATA / "recentchange-2026-06-20.sse")


def iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


def live_stream(count: int, rate: float, start: float, first: int = 0) -> list[bytes]:
    """``count`` recorded events stamped as if they happen from ``start`` at ``rate``/s.

    Event ``first + i`` of an endless replay of the recording, so streams with
    different ``first`` never share a ``meta.id``.
    """
    out = []
    for i in range(count):
        when = datetime.fromtimestamp(start + i / rate, UTC)
        n = first + i
        out.append(restamp(RECORDED[n % len(RECORDED)], when, cycle=n // len(RECORDED)))
    return out


def canary(when: float) -> bytes:
    return json.dumps(
        {"meta": {"domain": "canary", "dt": iso(when), "id": str(uuid.uuid4())}}
    ).encode()


MALFORMED = [
    b"{not json",
    b"\xff\xfe not utf-8",
    b"[1, 2, 3]",
    b'{"meta": {"dt": "2026-01-01T00:00:00Z"}, "server_name": ""}',
    b'{"meta": {"dt": "2026-01-01T00:00:00Z"}, "server_name": "a\\u0007b"}',
]


def with_noise(events: list[bytes], start: float, rate: float) -> list[bytes]:
    """Interleave duplicates, canaries and malformed records into a live stream."""
    out = []
    for i, data in enumerate(events):
        out.append(data)
        if i % 40 == 7:
            out.append(data)  # the same event again (same meta.id)
        if i % 97 == 11:
            out.append(canary(start + i / rate))
        if i % 150 == 20:
            out.append(MALFORMED[(i // 150) % len(MALFORMED)])
    return out


def play_async(replay: ReplayServer, payloads: list[bytes], rate: float) -> threading.Thread:
    """Append ``payloads`` to the replay log at ``rate``/s in a background thread."""
    thread = threading.Thread(target=replay.play, args=(payloads, rate, False), daemon=True)
    thread.start()
    return thread
