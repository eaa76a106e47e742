"""The processor's Quix pipeline, run in-process without Kafka (for the contract tier).

`processor.pipeline.wire` is applied to a real `StreamingDataFrame` with the real
`RedisWindowSink` writing to a real Redis; only the Kafka edges are replaced: topics are
not looked up on a broker, records are fed straight into the composed pipeline, what
the pipeline produces (dead letters) is captured, and the consumer group's committed
offsets and the topic's low watermark are plain numbers (`OfflineGroup`). `commit` is
the sink flush Quix runs before each commit; `read_again` is what Quix does after a
back-pressure (seek back, read on). Integration tests run the same pipeline as a
process against real Kafka and Redis.

This leans on Quix internals (`TopicManager`, `ProcessingContext`, `DataFrameRegistry`);
a Quix upgrade that changes them breaks this harness, not the product.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from quixstreams.context import set_message_context
from quixstreams.dataframe import DataFrameRegistry, StreamingDataFrame
from quixstreams.models import TopicConfig
from quixstreams.models.messagecontext import MessageContext
from quixstreams.models.topics import Topic, TopicManager
from quixstreams.processing import ProcessingContext
from quixstreams.sinks import SinkBackpressureError, SinkManager
from quixstreams.state import StateStoreManager

from processor.pipeline import wire
from processor.sink import RedisWindowSink
from wikipulse.events import HEARTBEAT_KEY, Header, Kind
from wikipulse.settings import RedisSettings
from wikipulse.store.keys import KeyLayout
from wikipulse.store.reads import Scored
from wikipulse.store.window_store import WindowStore

RAW, DLQ = "raw", "raw.dlq"


class _OfflineTopics(TopicManager):
    """Topics as configured, without asking a broker."""

    def __init__(self) -> None:
        super().__init__(
            topic_admin=None,  # type: ignore[arg-type]
            consumer_group="inprocess",
            auto_create_topics=False,
        )

    def _get_or_create_broker_topic(self, topic: Topic) -> Topic:
        assert topic.create_config is not None
        topic.broker_config = topic.create_config
        return topic


@dataclass
class Produced:
    """A record the pipeline wrote to a topic."""

    topic: str
    key: bytes
    value: bytes
    timestamp: int
    headers: list[tuple[str, bytes]]


class _CapturingProducer:
    """Quix's transactional producer as far as the pipeline sees it: what a checkpoint
    produces counts once the checkpoint commits, and is gone when it is aborted."""

    def __init__(self) -> None:
        self.records: list[Produced] = []
        self.open: list[Produced] = []

    def produce_row(self, row: Any, topic: Topic, key: Any = None, **kwargs: Any) -> None:
        timestamp = kwargs.get("timestamp") or row.timestamp
        headers = list(row.headers or [])
        self.open.append(Produced(topic.name, key or row.key, row.value, timestamp, headers))

    def commit(self) -> None:
        self.records += self.open
        self.open.clear()

    def abort(self) -> None:
        self.open.clear()


@dataclass
class OfflineGroup:
    """What Kafka knows of a consumer group and its topic: committed offsets (the next
    offset to read) and low watermarks, per partition. Replicas of one group share it."""

    committed: dict[int, int] = field(default_factory=dict)
    low: dict[int, int] = field(default_factory=dict)


class _OfflineSeeker:
    def __init__(self, pipe: InProcessPipeline) -> None:
        self._pipe = pipe

    def committed(self, partition: int) -> int | None:
        return self._pipe.group.committed.get(partition)

    def low_watermark(self, partition: int) -> int:
        return self._pipe.group.low.get(partition, 0)

    def rewind(self, partition: int, offset: int) -> None:
        self._pipe.rewinds[partition] = offset


Fed = tuple[bytes | None, bytes, int, list[tuple[str, bytes]]]


@dataclass
class InProcessPipeline:
    """Feed raw records in; read final windows and produced records out."""

    state_dir: Path
    redis_url: str
    prefix: str
    window_ms: int = 30_000
    grace_ms: int = 5_000
    partitions: int = 2
    group: OfflineGroup = field(default_factory=OfflineGroup)
    ttl_seconds: int = 3600
    source: str = ""
    #: per partition, where the sink asked the next read to start (`Seeker.rewind`)
    rewinds: dict[int, int] = field(default_factory=dict)
    _offsets: dict[int, int] = field(default_factory=dict)
    _log: dict[int, list[Fed]] = field(default_factory=dict)
    _checkpoint: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        topics = _OfflineTopics()
        config = TopicConfig(
            num_partitions=self.partitions,
            replication_factor=1,
            extra_config={"retention.ms": "604800000", "retention.bytes": "-1"},
        )
        serdes = {
            f"{part}_{io}": "bytes"
            for part in ("key", "value")
            for io in ("serializer", "deserializer")
        }
        raw = topics.topic(RAW, create_config=config, **serdes)  # type: ignore[arg-type]
        dlq = topics.topic(DLQ, create_config=config, **serdes)  # type: ignore[arg-type]
        self._producer = _CapturingProducer()
        self._state = StateStoreManager(group_id="inprocess", state_dir=self.state_dir)
        registry = DataFrameRegistry()
        self.context = context = ProcessingContext(
            commit_interval=0,
            producer=self._producer,  # type: ignore[arg-type]
            consumer=None,  # type: ignore[arg-type]
            state_manager=self._state,
            sink_manager=SinkManager(),
            dataframe_registry=registry,
        )
        sdf = StreamingDataFrame(
            raw, topic_manager=topics, processing_context=context, registry=registry
        )
        registry.register_root(sdf)
        redis_settings = RedisSettings(redis_url=self.redis_url, redis_key_prefix=self.prefix)
        self.sink = RedisWindowSink(
            redis_settings,
            window_ms=self.window_ms,
            grace_ms=self.grace_ms,
            ttl_seconds=self.ttl_seconds,
            partitions=self.partitions,
            seeker=_OfflineSeeker(self),
            source=self.source,
            backpressure_seconds=0.1,
        )
        self.sink.setup()
        self.store = WindowStore.connect(redis_settings)
        wire(sdf, dlq_topic=dlq, sink=self.sink)
        self._run = registry.compose_all()[RAW]
        context.init_checkpoint()

    def feed(
        self,
        value: bytes | None,
        key: bytes,
        timestamp: int,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int = 0,
    ) -> None:
        offset = self._offsets.get(partition, self.group.committed.get(partition, 0))
        log = self._log.setdefault(partition, [])
        if offset == len(log):
            log.append((value, key, timestamp, headers or []))
        self._deliver(partition, offset, (value, key, timestamp, headers or []))

    def event(
        self, wiki: bytes, event_id: str, at: int, partition: int = 0, facts: bytes = b"eh"
    ) -> None:
        """An event as the producer writes it: keyed by wiki, stamped, with its verdict
        and its facts (`wikipulse.events.facts_of`; a human's edit without size)."""
        headers = [
            (Header.KIND, Kind.EVENT),
            (Header.EVENT_ID, event_id.encode()),
            (Header.FACTS, facts),
        ]
        self.feed(b"{}", wiki, at, headers, partition)

    def heartbeat(self, at: int, partition: int = 0) -> None:
        self.feed(b"", HEARTBEAT_KEY.encode(), at, [(Header.KIND, Kind.HEARTBEAT)], partition)

    def _deliver(self, partition: int, offset: int, record: Fed) -> None:
        value, key, timestamp, headers = record
        self._offsets[partition] = offset + 1
        self._checkpoint.setdefault(partition, offset)
        message = MessageContext(
            topic=RAW, partition=partition, offset=offset, size=len(value or b""), leader_epoch=None
        )
        run = contextvars.copy_context()
        run.run(set_message_context, message)
        run.run(self._run, value, key, timestamp, headers or [])

    def commit(self) -> None:
        """A Quix checkpoint: flush the sink (the Redis write), then commit the offsets
        read. Raises `SinkBackpressureError` like the sink; then `read_again`."""
        try:
            self.sink.flush()
        except Exception:
            self._producer.abort()
            raise
        self._producer.commit()
        for partition, offset in self._offsets.items():
            self.group.committed[partition] = offset
        self._checkpoint.clear()

    def read_again(self) -> None:
        """What Quix does after a back-pressure: each partition read in the checkpoint
        seeks back to the checkpoint's start (or where the sink rewound it) and reads on
        to the end of what was fed."""
        starts = {**self._checkpoint, **self.rewinds}
        self._checkpoint.clear()
        self.rewinds.clear()
        for partition, start in sorted(starts.items()):
            log = self._log.get(partition, [])
            start = max(start, self.group.low.get(partition, 0))
            for offset in range(start, len(log)):
                self._deliver(partition, offset, log[offset])

    def commit_as_quix(self, attempts: int = 5) -> int:
        """`commit`, reading again after each back-pressure, until one succeeds; returns
        how many back-pressures it took."""
        for attempt in range(attempts):
            try:
                self.commit()
                return attempt
            except SinkBackpressureError:
                self.read_again()
        raise AssertionError(f"no commit succeeded in {attempts} attempts")

    def counts(self) -> dict[tuple[int, str], int]:
        """(window start, wiki) -> count of every *final* window, after a commit: the
        published ones and those some partition has finalized but not every one yet."""
        self.commit()
        keys: KeyLayout = self.store.keys
        found: dict[tuple[int, str], int] = {}
        for pattern in (keys.window("*"), keys.source(self.source).final("*")):
            for key in self.store.client.scan_iter(pattern):
                start = int(key.decode().rsplit(":", 1)[1])
                scored = cast(Scored, self.store.client.zrange(key, 0, -1, withscores=True))
                for member, count in scored:
                    found[start, member.decode()] = found.get((start, member.decode()), 0) + int(
                        count
                    )
        return found

    @property
    def produced(self) -> list[Produced]:
        return list(self._producer.records)

    def close(self) -> None:
        self._state.close()
        self.store.close()
