"""The window logic: from raw records to per-wiki counts in 30 s tumbling windows.

::

    raw topic ─ classify ─┬─ invalid ──────────────> <raw>.dlq (+ reason header)
                          ├─ canary ───────────────> metric only
                          ├─ rekey ────────────────> raw topic, keyed by server name
                          └─ event / heartbeat ─ RedisWindowSink ─ tally (per checkpoint)
                                                   ├─ closed window: late, metric only
                                                   └─ + open windows in Redis ─ final

Event time is the record timestamp, which the producer sets to ``meta.dt``.

**Counted per checkpoint, not per event.** Quix Streams' window operator reads and
writes its state once per event; on this kind of machine that alone costs 30 to 50 µs an
event, more than the rest of the processor together (benchmarks/README.md). So the
windows are not Quix windows: the sink collects each partition's records between two
commits, and `tally` counts them per (window, wiki) in a dict; one Redis script per
partition then adds those sums to the open windows and finalizes the ones that closed
(`wikipulse.store`). The per-event work is a tuple appended and a dict incremented.

**When a window closes.** Each partition has an event-time clock: the newest timestamp
it has seen. A window is final once the clock passes its end plus the grace, and a
record for a final window is ``late``: counted in a metric, never in a window. The clock
is stored in Redis with the counts, so it holds across restarts and rebalances.

**A plain count.** Every event record counts once: the producer, the raw topic's only
writer, drops the copies a resume makes before they reach Kafka (`producer.copies`).

**Quiet partitions.** A window closes only when a newer record reaches its partition.
The producer therefore writes a heartbeat to every partition every
``HEARTBEAT_SECONDS`` (0.25 s), stamped with the stream's event-time clock (see
`producer.publisher`): it moves the clock and is never counted, so a final result reaches
Redis within about ``grace + heartbeat + commit interval`` (5.75 s by default) of the
window's end even if that partition gets no events.

**Exactly once.** The app runs with ``processing_guarantee="exactly-once"``: dead
letters, re-keyed records and consumer offsets commit in one Kafka transaction. The Redis
write comes just before each commit and carries the last offset it counted, fenced on the
one it read (`wikipulse.store`): a crash between the two makes the records since the last
commit come again, and the sink skips those Redis has counted already.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quixstreams.context import message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models import Topic

from processor import metrics
from processor.records import RAW, REASON, TIME_MS, VERDICT, Record, Verdict, classify
from wikipulse.events import HEARTBEAT_KEY, Event, Header, parse
from wikipulse.store import Progress

if TYPE_CHECKING:
    from processor.sink import RedisWindowSink

_HEARTBEAT = HEARTBEAT_KEY.encode()
_ASIDE = frozenset({Verdict.INVALID, Verdict.REKEY})
_COUNTED = frozenset({Verdict.EVENT, Verdict.HEARTBEAT})


def count_windows(
    sdf: StreamingDataFrame,
    *,
    raw_topic: Topic,
    dlq_topic: Topic,
    sink: RedisWindowSink,
) -> StreamingDataFrame:
    """Wire the whole pipeline onto ``sdf`` (a dataframe of the raw topic); ``sink``
    counts the windows and is flushed before every commit.

    The common record, an event or a heartbeat, takes one step: `Router.keep_aside`
    judges it and hands it to the sink. Only the rare rest goes on through the
    dataframe, so Quix neither wraps nor copies the common record more than once.
    """
    sdf.processing_context.sink_manager.register(sink)
    aside = sdf.filter(Router(sink).keep_aside, metadata=True)
    aside = aside.apply(classify, metadata=True)

    dead = aside.filter(lambda r: r[VERDICT] == Verdict.INVALID)
    dead = dead.set_headers(_with_reason).apply(lambda r: r[RAW])
    dead.to_topic(dlq_topic)

    rekey = aside.filter(lambda r: r[VERDICT] == Verdict.REKEY)
    rekey = rekey.set_timestamp(lambda r, *_: r[TIME_MS]).apply(lambda r: r[RAW])
    rekey.to_topic(raw_topic, key=_server_name_key)
    return aside


class Router:
    """Judges each raw record once (`processor.records.classify`) and counts its verdict:
    events and heartbeats go to the window sink, canaries stop here, and invalid and
    re-keyed records go on (`keep_aside` is True) to their topics."""

    def __init__(self, sink: RedisWindowSink) -> None:
        self._take = sink.take
        self._verdicts = metrics.RECORDS.counts

    def keep_aside(self, value: Any, key: Any, timestamp: int, headers: Any) -> bool:
        record = classify(value, key, timestamp, headers)
        verdict = record[VERDICT]
        self._verdicts[verdict] += 1
        if verdict in _COUNTED:
            context = message_context()
            self._take(context.partition, context.offset, record[TIME_MS], key)
            return False
        return verdict in _ASIDE


@dataclass(slots=True)
class Tally:
    """What one partition's records since the last write add up to."""

    #: window start -> wiki -> events counted
    counts: dict[int, dict[str, int]]
    #: events whose window had closed before they came (not counted)
    late: int
    #: records at or below the stored offset: counted by an earlier write already
    replayed: int
    #: the partition's progress after these records
    progress: Progress
    #: the end of the newest window the partition's clock has closed
    closed_end: int


def tally(
    records: Iterable[tuple[int, int, bytes]],
    since: Progress,
    *,
    window_ms: int,
    grace_ms: int,
) -> Tally:
    """Count ``records`` — ``(offset, event time, key)`` in offset order, heartbeats keyed
    by `HEARTBEAT_KEY` — on top of ``since``, the partition's progress in Redis.

    A window ``[S, S + window)`` is final once the partition's clock reaches
    ``S + window + grace``; a later event for it is late. Records at or below
    ``since.offset`` were counted before a crash and are skipped.
    """
    counts: dict[int, dict[bytes, int]] = {}
    late = replayed = 0
    offset = since.offset
    clock = since.time_ms
    closed_end = _closed_end(clock, window_ms, grace_ms)
    for record_offset, time_ms, key in records:
        if record_offset <= offset:
            replayed += 1
            continue
        offset = record_offset
        if clock is None or time_ms > clock:
            clock = time_ms
            closed_end = _closed_end(clock, window_ms, grace_ms)
        if key == _HEARTBEAT:
            continue
        start = time_ms - time_ms % window_ms
        if start + window_ms <= closed_end:
            late += 1
            continue
        window = counts.get(start)
        if window is None:
            window = counts[start] = {}
        window[key] = window.get(key, 0) + 1
    decoded = {
        start: {key.decode("utf-8", "replace"): n for key, n in window.items()}
        for start, window in counts.items()
    }
    return Tally(decoded, late, replayed, Progress(offset, clock), closed_end)


def _closed_end(clock: int | None, window_ms: int, grace_ms: int) -> int:
    """The end of the newest window a partition clock at ``clock`` has closed."""
    if clock is None:
        return 0
    edge = clock - grace_ms
    return edge - edge % window_ms


def _with_reason(record: Record, _key: Any, _ts: int, headers: Any) -> list[tuple[str, bytes]]:
    kept = [(k, v) for k, v in (headers or []) if k != Header.REASON]
    return [*kept, (Header.REASON, record[REASON].encode())]


def _server_name_key(raw: bytes) -> bytes:
    parsed = parse(raw)
    assert isinstance(parsed, Event)  # only countable records are re-keyed
    return parsed.server_name.encode()
