"""A replica frozen in the middle of its commit holds its partitions only until the
broker aborts its transaction, and the processor keeps that short.

Once a checkpoint's offsets are in a transaction (``send_offsets_to_transaction``) and
before it ends, the group's committed offsets of those partitions are *unstable*: a
replica taking them over asks where to go on and is told to wait (KIP-447) until the
transaction ends. A replica that froze there (a long pause, a VM stall, SIGSTOP) never
ends it; the broker aborts it once ``transaction.timeout.ms`` has passed, at its next
sweep for expired transactions (``transaction.abort.timed.out.transaction.cleanup.
interval.ms``, 10 s). With librdkafka's 60 s the frozen replica's partitions went
uncounted for about 70 s and no window could be published meanwhile (CI's
`replica-frozen` scenario saw none in 51 s).

Here the real Quix application counts against a real broker and Redis; the one call
that ends the transaction is made to wait, as if the process had frozen right before it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from devtools.servers import Services
from processor.app import build_app
from processor.settings import ProcessorSettings
from tests.support.names import Names
from tests.support.streams import MALFORMED

#: the broker's sweep for expired transactions (Kafka's default, which ours keeps)
ABORT_SWEEP_SECONDS = 10.0


def settings_for(services: Services, names: Names, tmp_path: Path) -> ProcessorSettings:
    return ProcessorSettings(
        kafka_broker_address=services.kafka,
        raw_topic=names.topic,
        raw_topic_partitions=1,
        redis_url=services.redis_url,
        redis_key_prefix=names.prefix,
        consumer_group=names.group,
        state_dir=str(tmp_path / "state"),
    )


def test_a_replica_frozen_mid_commit_holds_its_partitions_for_the_transaction_timeout(
    services: Services, names: Names, tmp_path: Path
) -> None:
    settings = settings_for(services, names, tmp_path)
    app = build_app(settings)
    quix_producer: Any = app._processing_context.producer._producer
    held: list[float] = []
    answered: list[TopicPartition] = []

    def freezes(*args: Any, **kwargs: Any) -> None:
        """The offsets are in the transaction, which this replica never ends: it waits
        here while the partition's new owner asks where to go on, as it asks it."""
        frozen_at = time.monotonic()
        taker = Consumer(
            {
                "bootstrap.servers": services.kafka,
                "group.id": names.group,
                "isolation.level": "read_committed",  # Quix's, and librdkafka's default
                "enable.auto.commit": False,
            }
        )
        try:
            while not answered and time.monotonic() - frozen_at < 100:
                try:
                    answered.extend(taker.committed([TopicPartition(names.topic, 0)], timeout=1))
                except KafkaException:  # unstable: the frozen transaction is still open
                    continue
        finally:
            taker.close()
            held.append(time.monotonic() - frozen_at)
            app.stop()
        raise KafkaException("the frozen replica woke after its transaction was aborted")

    quix_producer.commit_transaction = freezes
    raw = Producer({"bootstrap.servers": services.kafka})
    raw.produce(names.topic, MALFORMED[0])  # a record, so a checkpoint has to commit
    raw.flush(10)
    give_up = threading.Timer(150, app.stop)
    give_up.start()
    try:
        app.run()
    except KafkaException:
        pass  # the woken replica's commit fails: it starts over, as after any failure
    finally:
        give_up.cancel()
    assert held, "no checkpoint reached the end of its transaction"
    assert answered, f"the partition was still held after {held[0]:.0f} s"
    # the frozen checkpoint's offsets were aborted with it: nothing committed
    assert answered[0].offset < 0, answered
    bound = settings.transaction_timeout_seconds + ABORT_SWEEP_SECONDS + 5
    assert held[0] <= bound, f"held {held[0]:.1f} s; the transaction timeout allows {bound:.0f}"
