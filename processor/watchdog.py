"""A watchdog on the checkpoint's Kafka calls: a commit that never returns starts over.

Quix Streams commits a checkpoint with calls that wait without a bound: the producer's
flush, then ``send_offsets_to_transaction`` and ``commit_transaction``. librdkafka can
block in ``send_offsets_to_transaction`` for good when the consumer group's coordinator
was a broker that died (confluentinc/librdkafka#5511, #5456; seen in about 2 of 5 runs
of the cluster's leader kill): every process stays up and nothing is counted again.

Starting over is what the processor already does on any failure, and it is safe here
for the same reason: the transaction was not committed (the broker aborts it after
``transaction.timeout.ms``), so a fresh process re-reads from the last committed offset,
and the Redis write before the commit is fenced by offset, so what it had counted is
skipped. A commit that waits because Kafka itself is down is *not* a hang: the watchdog
starts over only while the cluster answers a metadata request from a client of its own
(a fresh process could not start without Kafka either).
"""

from __future__ import annotations

import faulthandler
import functools
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from confluent_kafka.admin import AdminClient

from wikipulse.settings import KafkaSettings

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: The producer calls of a checkpoint commit that wait on brokers without a bound.
GUARDED_CALLS = ("flush", "commit_transaction")


class CommitWatchdog:
    """Watches the guarded calls; `on_stuck` once one outlasts ``limit_seconds`` while
    ``kafka_answers()``. ``check`` is one look, run every ``period`` by `start`."""

    def __init__(
        self,
        limit_seconds: float,
        kafka_answers: Callable[[], bool],
        on_stuck: Callable[[float], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit_seconds = limit_seconds
        self._kafka_answers = kafka_answers
        self._on_stuck = on_stuck
        self._clock = clock
        self._since: float | None = None  # when the guarded call running now began
        self._fired = False
        self._stop = threading.Event()

    def guard(self, call: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(call)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            self._since = self._clock()
            try:
                return call(*args, **kwargs)
            finally:
                self._since = None

        return guarded

    def check(self) -> bool:
        """Whether this look found a call stuck (and called `on_stuck`)."""
        since = self._since
        if since is None or self._fired:
            return False
        waited = self._clock() - since
        if waited < self.limit_seconds:
            return False
        if not self._kafka_answers():
            log.warning("a checkpoint commit has waited %.0f s: Kafka does not answer", waited)
            return False
        self._fired = True
        self._on_stuck(waited)
        return True

    def start(self, period: float = 1.0) -> None:
        def watch() -> None:
            while not self._stop.wait(period):
                self.check()

        threading.Thread(target=watch, name="commit-watchdog", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


def kafka_answers(settings: KafkaSettings, timeout: float = 10.0) -> Callable[[], bool]:
    """Whether the cluster answers metadata now, asked by a client of its own (the
    stuck one's cached view of the cluster is what is wrong)."""

    def ask() -> bool:
        admin = AdminClient({**settings.client_config(), "log_level": 3})
        try:
            return bool(admin.list_topics(timeout=timeout).brokers)
        except Exception:
            return False

    return ask


def watch_commits(app: Any, watchdog: CommitWatchdog) -> None:
    """Guard the producer calls of ``app``'s checkpoint commits and start watching (a
    Quix `Application`: its processing context's `InternalProducer`, the one every
    checkpoint commits through, quixstreams 3.28; tests/integration/test_commit_watchdog.py
    holds it)."""
    producer = app._processing_context.producer
    for name in GUARDED_CALLS:
        setattr(producer, name, watchdog.guard(getattr(producer, name)))
    watchdog.start()


def report_stuck(waited: float) -> None:
    """What a stuck commit leaves in the log before the process starts over: one line
    and every thread's stack (the main thread's shows the call that never returned)."""
    log.error(
        "a checkpoint commit has been blocked for %.0f s while Kafka answers (librdkafka: "
        "confluentinc/librdkafka#5511): starting over in a fresh process",
        waited,
    )
    sys.stderr.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
