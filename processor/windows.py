"""The window logic: from raw records to final per-wiki counts, as one Quix pipeline.

::

    raw topic ─ classify ─┬─ invalid ──────────────────────────────> <raw>.dlq (+ reason header)
                          ├─ canary ───────────────────────────────> metric only
                          ├─ rekey ────────────────────────────────> raw topic, keyed by server name
                          └─ event / heartbeat ─ drop duplicates (meta.id, stateful, TTL)
                                    └─ tumbling window (event time, grace) ─ count ─ final
                                          └─ RedisWindowSink

Event time is the record timestamp, which the producer sets to ``meta.dt``.

**Quiet partitions.** Quix closes a window only when a newer record reaches its
partition. The producer therefore writes a heartbeat to every partition each second,
stamped with the stream's event-time clock (see `producer.publisher`). With
``closing_strategy="partition"`` a heartbeat closes the due windows of *all* wikis in
its partition, so a final result reaches Redis within about ``grace + heartbeat +
commit interval`` of the window's end even if that partition gets no events. The
heartbeats are counted in a window of their own key, which the sink drops but reads as
"this partition has finalized up to here" — the progress mark behind completeness.

**Exactly once.** The app runs with ``processing_guarantee="exactly-once"``: window
state, dedup state, dead letters and consumer offsets commit in one Kafka transaction;
the Redis writes before each commit are idempotent (see `processor.sink`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models import Topic
from quixstreams.sinks import BaseSink
from quixstreams.state import State

from processor import metrics
from processor.records import Record, Verdict, classify
from wikipulse.events import HEARTBEAT_KEY, Event, Header, parse

log = logging.getLogger(__name__)

_HEARTBEAT = HEARTBEAT_KEY.encode()
_VERDICTS = {v: metrics.RECORDS.labels(v.value) for v in Verdict}
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
    dedup_ms: int,
) -> StreamingDataFrame:
    """Wire the whole pipeline onto ``sdf`` (a dataframe of the raw topic)."""
    records = sdf.apply(classify, metadata=True).update(_count_verdict)

    # Quix copies the value (by pickling) for every branch after the first, once per
    # record: two top-level branches cost one copy, where three cost two. So the two
    # rare outlets, dead letters and re-keys, split below one "aside" branch.
    aside = records.filter(lambda r: r.verdict in _ASIDE)
    dead = aside.filter(lambda r: r.verdict is Verdict.INVALID)
    dead = dead.set_headers(_with_reason).apply(lambda r: r.raw)
    dead.to_topic(dlq_topic)

    rekey = aside.filter(lambda r: r.verdict is Verdict.REKEY)
    rekey = rekey.set_timestamp(lambda r, *_: r.time_ms).apply(lambda r: r.raw)
    rekey.to_topic(raw_topic, key=_server_name_key)

    dedup_ttl = timedelta(milliseconds=dedup_ms)

    def first_time_seen(record: Record, state: State[str, int]) -> bool:
        if record.verdict is Verdict.HEARTBEAT:
            return True
        if state.exists(record.event_id):
            _DUPLICATE.inc()
            return False
        state.set(record.event_id, 1, ttl=dedup_ttl)
        return True

    counted = records.filter(lambda r: r.verdict in _COUNTED)
    counted = counted.set_timestamp(lambda r, *_: r.time_ms)
    counted = counted.filter(first_time_seen, stateful=True)
    finals = (
        counted.tumbling_window(window_ms, grace_ms=grace_ms, name="counts", on_late=_on_late)
        .count()
        .final(closing_strategy="partition")
    )
    finals.sink(sink)
    return finals


def _count_verdict(record: Record) -> None:
    _VERDICTS[record.verdict].inc()


def _with_reason(record: Record, _key: Any, _ts: int, headers: Any) -> list[tuple[str, bytes]]:
    kept = [(k, v) for k, v in (headers or []) if k != Header.REASON]
    return [*kept, (Header.REASON, record.reason.encode())]


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
    """Late events are accounted for in a metric (heartbeats never count as late)."""
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
