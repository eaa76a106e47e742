"""The SSE resume protocol: which ``Last-Event-ID`` we send on every (re)connect.

Everything about it lives in this module: sequence numbers and the in-flight tracker
(`InFlight`), the bookkeeping headers each event record carries (`bookkeeping_headers`,
`read_bookkeeping`) and the recovery of the resume point after a restart from the
records Kafka holds (`resume_point`; `producer.tails` reads them). The connection loop
(`producer.stream`) only asks for the resume id; the publisher only reports sends and
acknowledgements.

**First start.** With no resume point in Kafka there is no id to send. The stream then
starts at "now", unless ``BACKFILL`` asks for history: the first connection carries
``since`` (`backfill_since`), and every later one the ``Last-Event-ID`` of what Kafka
has acknowledged, never ``since`` again. Backfilled events are published exactly as
live ones, so the processor counts them without knowing.

Wikimedia starts a connection without ``Last-Event-ID`` at "now", so an id that is too
new loses events for good and one that is too old only repeats some (the publisher
drops repeats by ``meta.id``, `producer.copies`). The rule here is therefore: resume
after the newest event such that it *and every event before it* has been acknowledged
by Kafka.

In the running process `InFlight` tracks that point exactly. Across restarts it is
recovered from Kafka itself, with no second store: every event record carries its own
sequence number (``wp-seq``) and the acknowledged point at the time it was sent
(``wp-acked-seq`` / ``wp-acked-id``). `producer.tails.recover` reads the tail of each
partition, and `resume_point` takes
the newest acknowledged point it finds and extends it over the consecutive sequence
numbers present in Kafka. Events after a missing number are sent again; they are at
most the events that were in flight when the process died.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from wikipulse.durations import duration_ms
from wikipulse.events import MIN_TIME_MS, Header


def backfill_since(setting: str, now_ms: int) -> int | None:
    """The ``since`` (epoch ms) a first start asks for, from ``BACKFILL``; None when off.

    ``BACKFILL`` is ``0`` (off), a duration back from now (``90m``, ``1h``, ``2d``), an
    ISO 8601 time (``2026-06-20T12:00:00Z``) or epoch milliseconds. Raises `ValueError`
    for anything else, and for a time in the future.
    """
    text = setting.strip()
    if text in ("", "0"):
        return None
    back = duration_ms(text)
    if back is not None:
        return now_ms - back
    if text.isdigit():
        since = int(text)
        if since < MIN_TIME_MS:
            raise ValueError(f"BACKFILL={text!r}: a duration needs a unit (s, m, h, d)")
    else:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"BACKFILL={text!r}: expected 0, a duration (1h), an ISO time or epoch ms"
            ) from None
        since = int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)
    if since > now_ms:
        raise ValueError(f"BACKFILL={text!r} is in the future")
    return since


@dataclass(slots=True)
class ResumePoint:
    """Every event up to and including ``seq`` is in Kafka; ``sse_id`` is that event's id.

    Not frozen (one is made per acknowledgement; see `producer.sse.SseEvent`): treat it as
    a value, never change one."""

    seq: int
    sse_id: str | None


class InFlight:
    """Events between ``produce()`` and their delivery report, oldest first.

    `acked_point` advances only over a gap-free run of acknowledged events, because
    the broker may acknowledge partitions out of order. A failed delivery stops it
    where it is and sets `failed`: the stream must then be re-read from that point.
    """

    def __init__(self, start: ResumePoint, next_seq: int) -> None:
        self._pending: deque[list[object]] = deque()  # [seq, sse_id, acked?]
        self._by_seq: dict[int, list[object]] = {}
        self.acked_point = start
        self.next_seq = max(next_seq, start.seq + 1)
        self.failed = False

    def __len__(self) -> int:
        return len(self._pending)

    def sent(self, sse_id: str | None) -> int:
        seq = self.next_seq
        self.next_seq += 1
        entry: list[object] = [seq, sse_id, False]
        self._pending.append(entry)
        self._by_seq[seq] = entry
        return seq

    def acked(self, seq: int) -> None:
        entry = self._by_seq.pop(seq, None)
        if entry is None:
            return
        entry[2] = True
        pending = self._pending
        while pending and pending[0][2] and not self.failed:
            seq0, sse_id, _ = pending.popleft()
            assert isinstance(seq0, int)
            self.acked_point = ResumePoint(seq0, sse_id if isinstance(sse_id, str) else None)

    def failed_delivery(self, seq: int) -> None:
        self._by_seq.pop(seq, None)
        self.failed = True

    def rewind(self) -> ResumePoint:
        """Forget everything after `acked_point` (to be re-read from the stream)."""
        self._pending.clear()
        self._by_seq.clear()
        self.failed = False
        return self.acked_point


@dataclass(frozen=True, slots=True)
class Recovered:
    """What a restarted producer needs: where to resume, its next sequence number, and
    the ids of the events already in Kafka's tails, oldest first (`producer.copies`)."""

    point: ResumePoint | None
    next_seq: int
    event_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Bookkeeping:
    """What one event record says about the resume point (its `Header` values), and
    which event it is (``event_id``: None for canaries and invalid records)."""

    seq: int
    sse_id: str | None
    acked_seq: int | None
    acked_id: str | None
    event_id: str | None = None


def bookkeeping_headers(
    seq: int, sse_id: str | None, acked: ResumePoint
) -> list[tuple[str, bytes]]:
    """The headers of event ``seq``: its own place, and the acknowledged point when sent."""
    return BookkeepingHeaders().headers(seq, sse_id, acked)


class BookkeepingHeaders:
    """`bookkeeping_headers`, with the acknowledged point's headers encoded once per point.

    The point moves only when delivery reports are served (once per chunk read), so the
    events of a chunk share its encoded headers. Use one per thread."""

    def __init__(self) -> None:
        self._point: ResumePoint | None = None
        self._acked_seq: tuple[str, bytes] = (Header.ACKED_SEQ, b"")
        self._acked_id: tuple[str, bytes] | None = None

    def headers(self, seq: int, sse_id: str | None, acked: ResumePoint) -> list[tuple[str, bytes]]:
        if acked is not self._point:
            self._point = acked
            self._acked_seq = (Header.ACKED_SEQ, str(acked.seq).encode())
            self._acked_id = (
                None if acked.sse_id is None else (Header.ACKED_ID, acked.sse_id.encode())
            )
        headers = [(Header.SEQ, str(seq).encode()), self._acked_seq]
        if sse_id is not None:
            headers.append((Header.SSE_ID, sse_id.encode()))
        if self._acked_id is not None:
            headers.append(self._acked_id)
        return headers


def read_bookkeeping(headers: list[tuple[str, bytes]]) -> Bookkeeping | None:
    """The inverse of `bookkeeping_headers`; None for records without it (heartbeats,
    records of other tools) and for values that do not parse."""
    found = {name: value for name, value in headers}
    seq = found.get(Header.SEQ)
    if seq is None:
        return None
    acked_seq = found.get(Header.ACKED_SEQ)
    acked_id = found.get(Header.ACKED_ID)
    sse_id = found.get(Header.SSE_ID)
    event_id = found.get(Header.EVENT_ID)
    try:
        return Bookkeeping(
            seq=int(seq),
            sse_id=sse_id.decode() if sse_id else None,
            acked_seq=int(acked_seq) if acked_seq else None,
            acked_id=acked_id.decode() if acked_id else None,
            event_id=event_id.decode() if event_id else None,
        )
    except (ValueError, UnicodeDecodeError):
        return None


def resume_point(tails: list[Bookkeeping]) -> Recovered:
    """Pure part of `producer.tails.recover`: the newest acknowledged point, extended over
    consecutive seqs."""
    if not tails:
        return Recovered(None, 1)
    in_order = sorted(tails, key=lambda t: t.seq)
    event_ids = tuple(t.event_id for t in in_order if t.event_id is not None)
    by_seq = {t.seq: t for t in tails}
    acked = [t for t in tails if t.acked_seq is not None]
    if acked:
        newest = max(acked, key=lambda t: t.acked_seq or 0)
        assert newest.acked_seq is not None
        point = ResumePoint(newest.acked_seq, newest.acked_id)
    else:  # records without bookkeeping: trust only the oldest one seen
        oldest = min(by_seq)
        point = ResumePoint(oldest, by_seq[oldest].sse_id)
    while point.seq + 1 in by_seq:
        nxt = by_seq[point.seq + 1]
        point = ResumePoint(nxt.seq, nxt.sse_id)
    # New sequence numbers continue after the highest one in Kafka, even past a gap.
    return Recovered(point, max(max(by_seq), point.seq) + 1, event_ids)
