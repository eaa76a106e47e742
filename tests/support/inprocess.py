"""The processor's Quix pipeline, run in-process without Kafka (for the unit tier).

`processor.windows.count_windows` is wired onto a real `StreamingDataFrame` with real
RocksDB window state; only the edges are replaced: topics are not looked up on a broker,
records are fed straight into the composed pipeline, what the pipeline produces (dead
letters, re-keyed records) is captured, and the sink keeps the final windows in a list.
Integration tests run the same pipeline as a process against real Kafka and Redis.

This leans on Quix internals (`TopicManager`, `ProcessingContext`, `DataFrameRegistry`);
a Quix upgrade that changes them breaks this harness, not the product.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quixstreams.context import set_message_context
from quixstreams.dataframe import DataFrameRegistry, StreamingDataFrame
from quixstreams.models import TopicConfig
from quixstreams.models.messagecontext import MessageContext
from quixstreams.models.topics import Topic, TopicManager
from quixstreams.processing import ProcessingContext
from quixstreams.sinks import BatchingSink, SinkBatch, SinkManager
from quixstreams.state import StateStoreManager

from processor.windows import count_windows

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


class _CapturingSink(BatchingSink):
    def __init__(self) -> None:
        super().__init__()
        self.finals: list[tuple[int, bytes, dict[str, Any]]] = []

    def write(self, batch: SinkBatch) -> None:
        self.finals.extend((batch.partition, item.key, item.value) for item in batch)


@dataclass
class InProcessPipeline:
    """Feed raw records in; read final windows and produced records out."""

    state_dir: Path
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
        self._sink = _CapturingSink()
        count_windows(
            sdf,
            raw_topic=raw,
            dlq_topic=dlq,
            sink=self._sink,
            window_ms=self.window_ms,
            grace_ms=self.grace_ms,
        )
        self._run = registry.compose_all()[RAW]
        for partition in range(self.partitions):
            for stream_id in registry.get_stream_ids(topic_name=RAW):
                self._state.on_partition_assign(
                    stream_id=stream_id, partition=partition, committed_offsets={RAW: -1001}
                )
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

    def finals(self) -> list[tuple[int, bytes, dict[str, Any]]]:
        """The final windows the sink received so far: (partition, key, result)."""
        self._sink.flush()
        return list(self._sink.finals)

    def counts(self) -> dict[tuple[int, str], int]:
        """(window start, wiki) -> count, heartbeats left out, as the sink would write."""
        return {
            (result["start"], key.decode()): result["value"]
            for _, key, result in self.finals()
            if not key.startswith(b"\x00")
        }

    @property
    def produced(self) -> list[Produced]:
        return list(self._producer.records)

    def close(self) -> None:
        self._state.close()
