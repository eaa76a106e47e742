"""``wikipulse rebuild --prefix NEW [--window-seconds N]``: every window again, from Kafka.

Redis is a view of the raw topic, so it can be made again: this counts the whole
retained raw topic into a new key prefix (a new window length too, if asked), with a
consumer group of its own, while the live processors keep serving the old prefix. It
writes no dead letters (the live processors wrote them) and stops once it has counted
every record the topic held when it started. Then switch: set ``REDIS_KEY_PREFIX`` (and
``WINDOW_SECONDS``) to the new values for the processors and the readers and restart
them; the processors go on from where the rebuild stopped (the sink recounts what
Kafka's group committed past it), and the old prefix can be deleted.

Windows that began before the oldest retained record come out partial, never complete.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time

from confluent_kafka import Consumer, TopicPartition
from pydantic import ValidationError

from processor.app import build_app
from processor.settings import ProcessorSettings
from wikipulse.kafka import topic_id
from wikipulse.observability import setup_logging
from wikipulse.service import load_settings
from wikipulse.store.window_store import WindowStore

log = logging.getLogger("processor.rebuild")
PROGRAM = "wikipulse rebuild"


def high_watermarks(settings: ProcessorSettings) -> dict[int, int]:
    """Per partition of the raw topic, the offset after its newest record, now."""
    consumer = Consumer({**settings.client_config(), "group.id": "wikipulse-rebuild-probe"})
    try:
        topic = consumer.list_topics(settings.raw_topic, timeout=30).topics[settings.raw_topic]
        return {
            p: consumer.get_watermark_offsets(TopicPartition(settings.raw_topic, p), timeout=30)[1]
            for p in sorted(topic.partitions)
        }
    finally:
        consumer.close()


def rebuild_settings(
    live: ProcessorSettings, prefix: str, window_seconds: int | None
) -> ProcessorSettings:
    """The live processor's settings, counting into ``prefix`` (in ``window_seconds``
    windows if given) under a consumer group of its own, with no dead letters and no
    metrics port.

    Validated again as a whole, as the processor validates its own: a window length it
    would refuse is refused here too, before anything is read or written.
    """
    if prefix == live.redis_key_prefix:
        sys.exit(f"{PROGRAM}: {prefix!r} is the live prefix; name a new one")
    update = {
        "redis_key_prefix": prefix,
        "consumer_group": f"{live.consumer_group}-rebuild-{prefix.strip(':')}",
        "window_seconds": live.window_seconds if window_seconds is None else window_seconds,
        "write_dead_letters": False,
        "metrics_port": None,
    }
    try:  # model_validate: the fields as given, the environment not read again
        return ProcessorSettings.model_validate({**dict(live), **update})
    except ValidationError as exc:
        sys.exit(f"{PROGRAM}: bad configuration: {exc}")


def caught_up(store: WindowStore, source: str, targets: dict[int, int]) -> bool:
    return all(store.progress(p, source).offset >= high - 1 for p, high in targets.items())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.split("\n")[0])
    parser.add_argument("--prefix", required=True, help="the new REDIS_KEY_PREFIX to count into")
    parser.add_argument("--window-seconds", type=int, help="window length (default: the live one)")
    args = parser.parse_args(argv)
    live = load_settings(ProcessorSettings, PROGRAM)
    settings = rebuild_settings(live, args.prefix, args.window_seconds)
    setup_logging(settings.log_level)
    started = time.monotonic()
    targets = high_watermarks(settings)
    source = topic_id(settings, settings.raw_topic)
    app = build_app(settings)
    store = WindowStore.connect(settings, reads=True)
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            try:
                if caught_up(store, source, targets):
                    done.set()
                    app.stop()
            except Exception as exc:  # Redis not there yet: the sink waits for it too
                log.debug("progress not readable yet: %s", exc)

    threading.Thread(target=watch, name="rebuild-watch", daemon=True).start()
    log.info(
        "rebuilding %s (%d records) into %s in %d s windows",
        settings.raw_topic,
        sum(targets.values()),
        settings.redis_key_prefix,
        settings.window_seconds,
    )
    app.run()
    done.set()
    complete, partial = store.starts(10**7), store.partial_starts(10**7)
    took = time.monotonic() - started
    print(
        f"rebuilt {len(complete)} complete and {len(partial)} partial windows into "
        f"{args.prefix!r} in {took:.1f} s"
    )
    store.close()


if __name__ == "__main__":
    main()
