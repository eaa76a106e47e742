"""The Quix Streams pipeline: each raw record judged once and routed.

::

    raw topic ─ Router (classify) ─┬─ event, heartbeat, rekey ─ RedisWindowSink ─ Redis
                                   ├─ canary ──────────────── metric only
                                   └─ invalid ─────────────── <raw>.dlq (+ reason header)

What Quix Streams does here: the consumer group (replicas share the partitions), the
checkpoints (every ``COMMIT_INTERVAL_SECONDS``: flush the sink, then commit offsets and
the dead letters in one Kafka transaction, ``processing_guarantee="exactly-once"``), and
the sink back-pressure protocol (a sink that cannot write makes Quix abort the
checkpoint, pause, and read it again). The windows are not Quix windows: the sink
counts each checkpoint's records (`processor.windows.tally`) and one Redis script
finalizes them (`wikipulse/store/write_windows.lua`); docs/decisions.md says why.

**Re-keyed records are counted where they are.** A countable event whose Kafka key is
not its wiki (another tool wrote it) is counted in its own partition under its wiki's
name: partitions add up in the final window, so no copy is written back to the raw
topic (where it would land behind the stream, late, and could be written twice).

**Dead letters once.** After Redis lost writes the sink re-reads records whose dead
letters were committed already (`RedisWindowSink.resend_from`); those are not written
again.
"""

from __future__ import annotations

from typing import Any

from quixstreams.context import message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models import Topic

from processor import metrics
from processor.records import RAW, REASON, Record, Verdict, classify
from processor.sink import RedisWindowSink
from wikipulse.events import Event, Header, parse
from wikipulse.kafka import MAX_MESSAGE_BYTES

#: The largest body a dead letter carries whole: the topic's limit less room for the
#: (bounded) headers and Kafka's record overhead.
MAX_DEAD_LETTER_BYTES = MAX_MESSAGE_BYTES - 128 * 1024
#: What a dead letter keeps of a larger body.
TRUNCATED_BYTES = 64 * 1024
MAX_HEADERS = 32
MAX_HEADER_BYTES = 1024
#: Header of a dead letter whose body was cut: the original size in bytes.
TRUNCATED_HEADER = "wp-truncated"


def wire(sdf: StreamingDataFrame, *, dlq_topic: Topic | None, sink: RedisWindowSink) -> None:
    """Wire the pipeline onto ``sdf`` (a dataframe of the raw topic); without
    ``dlq_topic`` invalid records are only counted (a rebuild: their dead letters exist).

    The sink is registered with Quix's sink manager, not given to
    `StreamingDataFrame.sink`: in Quix Streams 3.28 being in the sink manager is what
    makes a sink flushed before every commit (`Checkpoint.commit` flushes its sinks),
    and ``sink()`` is that same registration plus one more dataframe step per record
    that calls ``add``. Here the common record (an event or a heartbeat) is handed to
    the sink straight from `Router.keep_aside`: one step per record, no Quix row copy
    for a second branch (docs/decisions.md, "The sink in Quix's sink manager", has the
    measurement). Quix tells sinks nothing of a rebalance; the application does
    (`processor.app.CountingApplication.count_with`).
    """
    sdf.processing_context.sink_manager.register(sink)
    dead = sdf.filter(Router(sink).keep_aside, metadata=True)
    if dlq_topic is None:
        return
    dead = dead.apply(classify, metadata=True)
    dead = dead.set_headers(dead_letter_headers).apply(dead_letter_value)
    dead.to_topic(dlq_topic)


class Router:
    """Judges each raw record once (`processor.records.classify`), counts its verdict,
    and hands it on: countable records to the window sink, canaries nowhere, invalid
    ones on through the dataframe to the dead-letter topic (`keep_aside` is True)."""

    def __init__(self, sink: RedisWindowSink) -> None:
        self._take = sink.take
        self._dead_lettered = sink.dead_lettered
        self._resend_from = sink.resend_from
        self._verdicts = metrics.RECORDS.counts

    def keep_aside(self, value: Any, key: Any, timestamp: int, headers: Any) -> bool:
        verdict, time_ms, _, _, facts = classify(value, key, timestamp, headers)
        self._verdicts[verdict] += 1
        context = message_context()
        partition, offset = context.partition, context.offset
        if verdict == Verdict.EVENT or verdict == Verdict.HEARTBEAT:
            self._take(partition, offset, time_ms, key, facts)
            return False
        if verdict == Verdict.REKEY:
            parsed = parse(value)
            assert isinstance(parsed, Event)  # only countable records are re-keyed
            self._take(partition, offset, time_ms, parsed.server_name.encode(), facts)
            return False
        self._take(partition, offset, time_ms, None, b"")
        if verdict == Verdict.INVALID:
            if offset < self._resend_from.get(partition, -1):
                metrics.DEAD_LETTERS_KEPT.inc()
                return False
            self._dead_lettered(partition, offset)
            return True
        return False


def dead_letter_headers(
    record: Record, _key: Any, _ts: int, headers: Any
) -> list[tuple[str, bytes]]:
    """The record's headers and the reason it is dead.

    Bounded, so that a dead letter always fits the topic: a record another tool wrote
    near the size limit (or with huge headers) would otherwise make every attempt to
    write its dead letter fail, and its partition would stop for good. The headers keep
    at most `MAX_HEADERS` of `MAX_HEADER_BYTES` each; a body cut by `dead_letter_value`
    is named in the reason and in the ``wp-truncated`` header (the original size).
    """
    kept = [
        (k, v[:MAX_HEADER_BYTES] if isinstance(v, bytes) else v)
        for k, v in (headers or [])
        if k not in (Header.REASON, TRUNCATED_HEADER)
    ][:MAX_HEADERS]
    reason = record[REASON][:MAX_HEADER_BYTES]
    size = len(record[RAW])
    if size > MAX_DEAD_LETTER_BYTES:
        reason = f"{reason} (truncated: the first {TRUNCATED_BYTES} of {size} bytes kept)"
        kept.append((TRUNCATED_HEADER, str(size).encode()))
    return [*kept, (Header.REASON, reason.encode())]


def dead_letter_value(record: Record) -> bytes:
    """The raw bytes of an invalid record, byte for byte, or their first
    `TRUNCATED_BYTES` when they exceed `MAX_DEAD_LETTER_BYTES`."""
    raw = record[RAW]
    return raw[:TRUNCATED_BYTES] if len(raw) > MAX_DEAD_LETTER_BYTES else raw
