"""The processor's Quix pipeline, run in-process without Kafka (for the contract tier).

`processor.windows.count_windows` is wired onto a real `StreamingDataFrame` with the
real `RedisWindowSink` writing to a real Redis; only the Kafka edges are replaced: topics
are not looked up on a broker, records are fed straight into the composed pipeline, and
what the pipeline produces (dead letters, re-keyed records) is captured. `commit` is the
sink flush Quix runs before each commit. Integration tests run the same pipeline as a
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
from quixstreams.sinks import SinkManager
from quixstreams.state import StateStoreManager

from processor.sink import RedisWindowSink
from processor.windows import count_windows
from wikipulse.store import KeyLayout, Scored, WindowStore

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
    def __init__(self) -> None:
        self.records: list[Produced] = []

    def produce_row(self, row: Any, topic: Topic, key: Any = None, **kwargs: Any) -> None:
        timestamp = kwargs.get("timestamp") or row.timestamp
        headers = list(row.headers or [])
        self.records.append(Produced(topic.name, key or row.key, row.value, timestamp, headers))


@dataclass
class InProcessPipeline:
    """Feed raw records in; read final windows and produced records out."""

    state_dir: Path
    redis_url: str
    prefix: str
    window_ms: int = 30_000
    grace_ms: int = 5_000
    partitions: int = 2
    _offsets: dict[int, int] = field(default_factory=dict)

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
        context = ProcessingContext(
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
        self.sink = RedisWindowSink(
            self.redis_url,
            self.prefix,
            window_ms=self.window_ms,
            grace_ms=self.grace_ms,
            ttl_seconds=3600,
            partitions=self.partitions,
            backpressure_seconds=0.1,
        )
        self.sink.setup()
        self.store = WindowStore.connect(self.redis_url, self.prefix)
        count_windows(sdf, raw_topic=raw, dlq_topic=dlq, sink=self.sink)
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
        offset = self._offsets.get(partition, 0)
        self._offsets[partition] = offset + 1
        message = MessageContext(
            topic=RAW, partition=partition, offset=offset, size=len(value or b""), leader_epoch=None
        )
        run = contextvars.copy_context()
        run.run(set_message_context, message)
        run.run(self._run, value, key, timestamp, headers or [])

    def commit(self) -> None:
        """What Quix does before it commits: flush the sink (the Redis write)."""
        self.sink.flush()

    def counts(self) -> dict[tuple[int, str], int]:
        """(window start, wiki) -> count of every *final* window, after a commit."""
        self.commit()
        keys: KeyLayout = self.store.keys
        found: dict[tuple[int, str], int] = {}
        for key in self.store.client.scan_iter(keys.window("*")):
            start = int(key.decode().rsplit(":", 1)[1])
            scored = cast(Scored, self.store.client.zrange(key, 0, -1, withscores=True))
            for member, count in scored:
                found[start, member.decode()] = int(count)
        return found

    @property
    def produced(self) -> list[Produced]:
        return list(self._producer.records)

    def close(self) -> None:
        self._state.close()
        self.store.close()
