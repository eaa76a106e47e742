"""The window logic: from raw records to final per-wiki counts, as one Quix pipeline.

::

    raw topic ─ classify ─┬─ invalid ─────────────────────────────> <raw>.dlq (+ reason header)
                          ├─ canary ──────────────────────────────> metric only
                          ├─ rekey ───────────────────────────────> raw topic, keyed by server name
                          └─ event / heartbeat ─ closed window? ── late: metric only
                                               └─ tumbling window (event time, grace)
                                                   ─ distinct meta.id count ─ final
                                                        └─ RedisWindowSink

Event time is the record timestamp, which the producer sets to ``meta.dt``.

**Duplicates.** A copy of an event (the producer re-reads up to ``MAX_IN_FLIGHT``
events after a crash; any writer may repeat one) carries the same ``meta.id``,
``server_name`` and ``meta.dt`` as the original, so it falls into the same window of the
same key, and closely follows it. The window therefore counts distinct ids, keeping its
``DEDUP_IDS`` most recent ones in its own state (`DistinctCounter`): one state read and
write per event, and the ids vanish with the window (docs/decisions.md says why not a
separate id store). A record that arrives after its window closed is not counted
either; it is counted as ``late`` (`ClosedWindowGuard`).

**Quiet partitions.** Quix closes a window only when a newer record reaches its
partition. The producer therefore writes a heartbeat to every partition every
``HEARTBEAT_SECONDS`` (0.25 s), stamped with the stream's event-time clock (see
`producer.publisher`). With ``closing_strategy="partition"`` a heartbeat closes the due
windows of *all* wikis in its partition, so a final result reaches Redis within about
``grace + heartbeat + commit interval`` (5.75 s by default) of the window's end even if
that partition gets no events. The heartbeats are counted in a window of their own key,
which the sink drops but reads as "this partition has finalized up to here" — the
progress mark behind completeness.

**Exactly once.** The app runs with ``processing_guarantee="exactly-once"``: window
state, dead letters and consumer offsets commit in one Kafka transaction; the Redis
writes before each commit are idempotent (see `wikipulse.store`).
"""

from __future__ import annotations

import logging
from typing import Any

from quixstreams.context import message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models import Topic
from quixstreams.sinks import BaseSink

from processor import metrics
from processor.records import EVENT_ID, RAW, REASON, TIME_MS, VERDICT, Record, Verdict, classify
from wikipulse.events import HEARTBEAT_KEY, Event, Header, digest_id, parse

log = logging.getLogger(__name__)

_HEARTBEAT = HEARTBEAT_KEY.encode()
_VERDICTS = {v: metrics.RECORDS.labels(v) for v in Verdict.ALL}
_DUPLICATE = metrics.RECORDS.labels("duplicate")
_LATE = metrics.RECORDS.labels("late")
_ASIDE = frozenset({Verdict.INVALID, Verdict.REKEY})
_COUNTED = frozenset({Verdict.EVENT, Verdict.HEARTBEAT})


def count_windows(
    sdf: StreamingDataFrame,
    *,
    raw_topic: Topic,
    dlq_topic: Topic,
    sink: BaseSink,
    window_ms: int,
    grace_ms: int,
    dedup_ids: int,
) -> StreamingDataFrame:
    """Wire the whole pipeline onto ``sdf`` (a dataframe of the raw topic)."""
    records = sdf.apply(_judge, metadata=True)

    # Quix copies the value for every branch after the first, once per record, so the
    # two rare outlets, dead letters and re-keys, split below one "aside" branch.
    aside = records.filter(lambda r: r[VERDICT] in _ASIDE)
    dead = aside.filter(lambda r: r[VERDICT] == Verdict.INVALID)
    dead = dead.set_headers(_with_reason).apply(lambda r: r[RAW])
    dead.to_topic(dlq_topic)

    rekey = aside.filter(lambda r: r[VERDICT] == Verdict.REKEY)
    rekey = rekey.set_timestamp(lambda r, *_: r[TIME_MS]).apply(lambda r: r[RAW])
    rekey.to_topic(raw_topic, key=_server_name_key)

    counted = records.filter(lambda r: r[VERDICT] in _COUNTED)
    ids = counted.set_timestamp(lambda r, *_: r[TIME_MS]).apply(lambda r: r[EVENT_ID])
    guard = ClosedWindowGuard(ids, window_ms)
    ids = ids.filter(guard.admit, metadata=True)
    counter = DistinctCounter(dedup_ids)
    window = ids.tumbling_window(
        window_ms, grace_ms=grace_ms, name="distinct", on_late=_on_late
    ).reduce(counter.add, counter.initial)
    guard.store_name = window.name
    finals = window.final(closing_strategy="partition").apply(distinct_count)
    finals.sink(sink)
    return finals


_SEP = "\n"
_MAX_ID = 64


class ClosedWindowGuard:
    """Turns away records for windows their partition has already closed, as ``late``.

    With ``closing_strategy="partition"`` Quix Streams 3.28 judges lateness against the
    end of the newest window the partition closed *minus the grace*, so a record for that
    newest closed window itself passes its check: it goes into a fresh window state that
    never closes again, neither counted nor reported (tests/unit/test_window_pipeline.py
    shows it). This check reads the same mark from the same window store transaction
    (the end of the newest closed window, kept in the store, so it holds across restarts
    and rebalances) and admits a record only when its window ends after it.
    """

    def __init__(self, sdf: StreamingDataFrame, window_ms: int) -> None:
        self._context = sdf.processing_context
        self._stream_id = sdf.stream_id
        self._window_ms = window_ms
        self.store_name = ""  # the window's store, known once the window is defined

    def admit(self, _value: Any, key: Any, timestamp_ms: int, _headers: Any) -> bool:
        partition = message_context().partition
        transaction: Any = self._context.checkpoint.get_store_transaction(
            stream_id=self._stream_id, partition=partition, store_name=self.store_name
        )
        closed_until: int = transaction.get_latest_expired(prefix=b"")
        window_end = timestamp_ms - timestamp_ms % self._window_ms + self._window_ms
        if window_end > closed_until:
            return True
        if key != _HEARTBEAT:  # a stale heartbeat moves nothing and is no event
            _LATE.inc()
            log.debug("late event at %d for closed window ending %d", timestamp_ms, window_end)
        return False


class DistinctCounter:
    r"""The window's reducer: counts distinct event ids, remembering the most recent ones.

    The state is ``[count, ids]``: ``ids`` is one string, ``"\n" + "".join(id + "\n")``
    over the last ``keep`` ids counted, because Quix keeps a window's state as JSON and
    rewrites it on every update, and a string is the form JSON reads, writes and
    searches fastest; an exact ``"\nid\n"`` match is a duplicate.

    Why only the recent ids: a copy follows its original closely. The producer re-reads
    at most ``MAX_IN_FLIGHT`` events after a crash, so with ``keep`` at least that, every
    such copy finds its original here. Bounding the ids bounds the cost of an update
    (it copies the string) and the state's size: a Kafka changelog record is at most
    1 MB, and a window of a busy wiki, or a long ``WINDOW_SECONDS``, would outgrow it.
    For the same reason an id longer than 64 characters, or one containing the
    separator, is replaced by its SHA-1 digest. A plain `reduce` rather than an
    `Aggregator`: Quix recomputes an aggregator's result on every update.
    """

    def __init__(self, keep: int) -> None:
        self.keep = keep

    def initial(self, event_id: str) -> list[Any]:
        """The state of a window after its first record (a heartbeat's id is empty)."""
        return self.add([0, _SEP], event_id)

    def add(self, window: list[Any], event_id: str) -> list[Any]:
        """``window`` with ``event_id`` counted, unless it is a recent one (a duplicate)."""
        if not event_id:
            return window
        if len(event_id) > _MAX_ID or _SEP in event_id:
            event_id = digest_id(event_id.encode())
        count, ids = window
        token = event_id + _SEP
        if _SEP + token in ids:
            _DUPLICATE.inc()
            return window
        ids += token
        if count >= self.keep:
            ids = ids[ids.index(_SEP, 1) :]  # forget the oldest
        return [count + 1, ids]


def distinct_count(window: dict[str, Any]) -> dict[str, Any]:
    """A final window as the sink takes it: ``{"start", "end", "value": count}``."""
    return {**window, "value": window["value"][0]}


def _judge(value: Any, key: Any, timestamp: int, headers: Any) -> Record:
    record = classify(value, key, timestamp, headers)
    _VERDICTS[record[VERDICT]].inc()
    return record


def _with_reason(record: Record, _key: Any, _ts: int, headers: Any) -> list[tuple[str, bytes]]:
    kept = [(k, v) for k, v in (headers or []) if k != Header.REASON]
    return [*kept, (Header.REASON, record[REASON].encode())]


def _server_name_key(raw: bytes) -> bytes:
    parsed = parse(raw)
    assert isinstance(parsed, Event)  # only countable records are re-keyed
    return parsed.server_name.encode()


def _on_late(
    value: Any,
    key: Any,
    timestamp_ms: int,
    late_by_ms: int,
    start: int,
    end: int,
    store_name: str,
    topic: str,
    partition: int,
    offset: int,
) -> bool:
    """Late events are accounted for in a metric (heartbeats never count as late).

    `ClosedWindowGuard` turns late records away before Quix sees them; this stays as
    the second line, so a record Quix finds late is never lost without a trace.
    """
    if key != _HEARTBEAT:
        _LATE.inc()
        log.debug(
            "late event %s[%d]@%d for window %d, %d ms late",
            topic,
            partition,
            offset,
            start,
            late_by_ms,
        )
    return False
