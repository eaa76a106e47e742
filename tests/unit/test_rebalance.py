"""Quix Streams tells a sink nothing of a rebalance: the processor's application tells
the window sink of every partition assigned, revoked or lost (`CountingApplication`),
so the sink reads their progress afresh (tests/contract/test_sink.py: what it forgets)."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from processor.app import CountingApplication


class Listening:
    """The window sink as the rebalance callbacks see it."""

    def __init__(self) -> None:
        self.forgotten: list[list[int]] = []

    def forget(self, partitions: list[int]) -> None:
        self.forgotten.append(partitions)


def test_the_sink_hears_of_every_partition_assigned_revoked_or_lost(tmp_path):
    # no broker: assigning is local to the consumer, and at-least-once opens no
    # transaction for the (empty) checkpoint the revoke commits
    app = CountingApplication(
        broker_address="127.0.0.1:1",
        consumer_group="rebalance",
        state_dir=str(tmp_path),
        processing_guarantee="at-least-once",
    )
    sink = Listening()
    app.count_with(sink)
    app._processing_context.init_checkpoint()
    app._on_assign(None, [TopicPartition("raw", 4), TopicPartition("raw", 5)])
    app._on_assign(None, [])  # an "empty" call (Quix: the consumer epoch updating)
    app._on_lost(None, [TopicPartition("raw", 2)])
    app._on_revoke(None, [TopicPartition("raw", 1), TopicPartition("raw", 3)])
    assert sink.forgotten == [[4, 5], [2], [1, 3]]
