"""A processor whose checkpoint commit hangs in librdkafka while Kafka answers starts
over (processor/watchdog.py), wired into the real Quix `Application` against a real
broker and Redis.

The hang itself (``send_offsets_to_transaction`` never returning after the group
coordinator's broker died, confluentinc/librdkafka#5511) needs a cluster losing a
broker and shows in about 2 of 5 runs (tests/faults/test_cluster.py); here the one call
it hangs in is made to block, and everything else is real.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from devtools.servers import Services, free_port
from processor.app import build_app
from processor.settings import ProcessorSettings
from processor.watchdog import CommitWatchdog, kafka_answers, watch_commits
from tests.support.names import Names
from tests.support.streams import MALFORMED

LIMIT = 2.0


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


def test_a_commit_hung_in_send_offsets_to_transaction_is_found_once_it_outlasts_the_limit(
    services: Services, names: Names, tmp_path: Path
) -> None:
    settings = settings_for(services, names, tmp_path)
    app = build_app(settings)
    # the call librdkafka hangs in, under Quix's InternalProducer.commit_transaction
    quix_producer: Any = app._processing_context.producer._producer
    send = quix_producer.send_offsets_to_transaction
    released = threading.Event()
    hung_at: list[float] = []

    def hangs(*args: Any, **kwargs: Any) -> Any:
        hung_at.append(time.monotonic())
        released.wait(60)
        return send(*args, **kwargs)

    quix_producer.send_offsets_to_transaction = hangs
    stuck: list[float] = []

    def on_stuck(waited: float) -> None:  # the processor re-executes itself here
        stuck.append(time.monotonic())
        released.set()
        app.stop()

    watchdog = CommitWatchdog(LIMIT, kafka_answers(settings), on_stuck)
    watch_commits(app, watchdog)
    raw = Producer({"bootstrap.servers": services.kafka})
    raw.produce(names.topic, MALFORMED[0])  # a record, so a checkpoint has to commit
    raw.flush(10)
    give_up = threading.Timer(90, app.stop)
    give_up.start()
    try:
        app.run()
    finally:
        give_up.cancel()
        watchdog.stop()
        released.set()
    assert hung_at, "no checkpoint reached send_offsets_to_transaction"
    assert stuck, "the hung commit was never found"
    assert LIMIT <= stuck[0] - hung_at[0] < LIMIT + 15


def test_kafka_answers_is_asked_of_a_client_of_its_own(
    services: Services, names: Names, tmp_path: Path
) -> None:
    settings = settings_for(services, names, tmp_path)
    assert kafka_answers(settings, timeout=5)()
    nobody = settings.model_copy(update={"kafka_broker_address": f"127.0.0.1:{free_port()}"})
    assert not kafka_answers(nobody, timeout=2)()
