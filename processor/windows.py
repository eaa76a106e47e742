"""The window arithmetic: one partition's records since its last write, counted.

Pure code, no I/O: `processor.sink` hands `tally` each partition's records of one
checkpoint, and `wikipulse/store/write_windows.lua` applies the result to Redis (adds the
counts to the open windows, finalizes the ones the clock closed, publishes the windows
every partition closed). This is the one place the window rules are written:

* A window ``[S, S + window)`` is aligned to the epoch; an event counts in the window of
  its event time (the record timestamp, which the producer sets to ``meta.dt``).
* Each partition has a clock, the newest event time it has seen (events and
  heartbeats move it). A window is final once the clock reaches ``S + window + grace``
  (`closed_end`); an event for a final window is ``late``: counted in a metric, never in
  a window. The clock is stored with the counts, so lateness holds across restarts.
* Records at or below the stored offset were counted before (a crash between the Redis
  write and the Kafka commit, a rebalance): ``replayed``, skipped.
* Every event record counts once: the producer, the raw topic's writer, drops the
  copies a resume makes before they reach Kafka (`producer.copies`).
* Each counted event is counted in its window's breakdown too (`BREAKDOWN`: bots, kinds
  of change, bytes added and removed), from the facts the producer put in its header
  (`wikipulse.events.facts_of`): the breakdowns add up exactly like the counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from wikipulse.events import HEARTBEAT_KEY, read_facts
from wikipulse.store.values import BREAKDOWN
from wikipulse.store.writes import Batch, Progress

_HEARTBEAT = HEARTBEAT_KEY.encode()

#: One processed raw record: ``(offset, event time, key, facts)``. The key is the wiki's
#: name (an event), `HEARTBEAT_KEY` (a heartbeat: moves the clock, never counted), or None
#: (processed but never counted: a canary, a dead letter; only its offset matters).
#: ``facts`` is an event's `wikipulse.events.Header.FACTS` value (empty otherwise).
Taken = tuple[int, int, bytes | None, bytes]

_BOT, _TYPES = BREAKDOWN.index("bot"), BREAKDOWN.index("edit")
_ADDED, _REMOVED = BREAKDOWN.index("added"), BREAKDOWN.index("removed")


def window_start(time_ms: int, window_ms: int) -> int:
    return time_ms - time_ms % window_ms


def closed_end(clock: int | None, window_ms: int, grace_ms: int) -> int:
    """The end of the newest window a partition clock at ``clock`` has closed."""
    if clock is None:
        return 0
    return window_start(clock - grace_ms, window_ms)


@dataclass(slots=True)
class Tally:
    """What one partition's records since the last write add up to."""

    #: window start -> wiki -> events counted
    counts: dict[int, dict[str, int]]
    #: window start -> wiki -> the breakdown of its events (`BREAKDOWN` order)
    breakdowns: dict[int, dict[str, list[int]]]
    #: events whose window had closed before they came (not counted)
    late: int
    #: records at or below the stored offset: counted by an earlier write already
    replayed: int
    #: the partition's progress after these records
    progress: Progress
    #: the end of the newest window the partition's clock has closed
    closed_end: int
    #: the event time of the first record not replayed (None: all were)
    first_time_ms: int | None = None

    def batch(
        self, partition: int, since: Progress, partial: tuple[int, int] | None = None
    ) -> Batch:
        """The fenced write of this tally on top of ``since``."""
        return Batch(
            partition,
            self.closed_end,
            self.counts,
            since,
            self.progress,
            partial,
            self.breakdowns,
        )


def tally(records: Iterable[Taken], since: Progress, *, window_ms: int, grace_ms: int) -> Tally:
    """Count ``records`` (`Taken`, in offset order) on top of ``since``, the partition's
    progress in Redis."""
    # per window, events per (key, facts): one dict step per event, the facts of each
    # distinct pair decoded once after the loop
    counts: dict[int, dict[tuple[bytes, bytes], int]] = {}
    late = replayed = 0
    offset = since.offset
    clock = since.time_ms
    first_time: int | None = None
    closed = closed_end(clock, window_ms, grace_ms)
    for record_offset, time_ms, key, facts in records:
        if record_offset <= offset:
            replayed += 1
            continue
        offset = record_offset
        if key is None:
            continue
        if first_time is None:
            first_time = time_ms
        if clock is None or time_ms > clock:
            clock = time_ms
            closed = closed_end(clock, window_ms, grace_ms)
        if key == _HEARTBEAT:
            continue
        start = time_ms - time_ms % window_ms
        if start + window_ms <= closed:
            late += 1
            continue
        window = counts.get(start)
        if window is None:
            window = counts[start] = {}
        pair = (key, facts)
        window[pair] = window.get(pair, 0) + 1
    decoded: dict[int, dict[str, int]] = {}
    breakdowns: dict[int, dict[str, list[int]]] = {}
    width = len(BREAKDOWN)
    for start, window in counts.items():
        names = decoded[start] = {}
        parts = breakdowns[start] = {}
        for (key, facts), n in window.items():
            name = key.decode("utf-8", "replace")  # two bad keys may decode alike: add
            names[name] = names.get(name, 0) + n
            part = parts.get(name)
            if part is None:
                part = parts[name] = [0] * width
            kind, bot, delta = read_facts(facts)
            part[0] += n
            part[_TYPES + kind] += n
            if bot:
                part[_BOT] += n
            if delta is not None:
                if delta > 0:
                    part[_ADDED] += delta * n
                else:
                    part[_REMOVED] -= delta * n
    progress = Progress(offset, clock)
    return Tally(decoded, breakdowns, late, replayed, progress, closed, first_time)


def lacking(
    since: Progress, first_time_ms: int, *, window_ms: int, grace_ms: int
) -> tuple[int, int]:
    """The windows that lack records when a partition counted on from ``since`` without
    the records after it (none counted yet, or records deleted by retention):
    ``(from, till)``, every window overlapping it.

    From the end of the newest window the partition had closed (those are final and
    whole) to the end of the window of the first record counted, plus ``grace_ms``: a
    deleted record may be up to the grace newer than the first one kept (records reach a
    partition out of order by at most the grace). Pass 0 when nothing was deleted (a
    stream's very first record has nothing before it).
    """
    return (
        closed_end(since.time_ms, window_ms, grace_ms),
        window_start(first_time_ms + grace_ms, window_ms) + window_ms,
    )
