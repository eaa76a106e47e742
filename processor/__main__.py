"""``wikipulse-processor`` / ``python -m processor``: raw events -> windows in Redis."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from confluent_kafka import KafkaException
from quixstreams.exceptions.assignment import PartitionAssignmentError
from quixstreams.models.topics.exceptions import TopicNotFoundError

from processor.app import RecordedMismatch, build_app
from processor.durability import UnsafeRedis
from processor.metrics import RESTARTS_IN_A_ROW
from processor.settings import ProcessorSettings
from processor.watchdog import CommitWatchdog, kafka_answers, report_stuck, watch_commits
from wikipulse.kafka import startup_failure
from wikipulse.service import start

log = logging.getLogger("processor")

#: Consecutive restarts so far, carried across `os.execv` to grow the back-off.
RESTARTS_ENV = "WIKIPULSE_PROCESSOR_RESTARTS"
#: A run this long ends a series of restarts (and resets the back-off and the gauge).
HEALTHY_AFTER_SECONDS = 60.0


def main() -> None:
    settings = start(ProcessorSettings, "wikipulse-processor")
    try:
        app = build_app(settings)
    except KafkaException as exc:  # a set-up problem: one clear line, no stack trace
        sys.exit(startup_failure("wikipulse-processor", settings, exc))
    except RecordedMismatch as exc:
        sys.exit(f"wikipulse-processor: {exc}")
    except TopicNotFoundError as exc:
        waited = settings.kafka_startup_timeout_seconds
        sys.exit(f"wikipulse-processor: {exc} (still, after {waited:.0f} s)")
    started = time.monotonic()
    if settings.commit_watchdog_seconds > 0:
        limit = settings.commit_watchdog_seconds
        watch_commits(app, CommitWatchdog(limit, kafka_answers(settings), _start_over))
    RESTARTS_IN_A_ROW.set(_restarts_before() + 1)
    healthy = threading.Timer(HEALTHY_AFTER_SECONDS, RESTARTS_IN_A_ROW.set, args=(0,))
    healthy.daemon = True
    healthy.start()
    try:
        app.run()  # handles SIGTERM/SIGINT: finishes the checkpoint, exits
    except UnsafeRedis as exc:  # a configuration problem: starting over cannot help
        sys.exit(f"wikipulse-processor: {exc}")
    except PartitionAssignmentError as exc:
        # a start-up race (a just-created topic still electing its leader),
        # not a fault: one line, no stack trace
        log.warning("the processor could not take its partitions yet: %s", exc)
        restart(time.monotonic() - started)
    except Exception:
        log.exception("the processor failed; the last checkpoint is where it resumes")
        restart(time.monotonic() - started)


def restart(ran_for: float) -> None:
    """Start over in a fresh process, after a back-off that grows while failures repeat.

    Quix Streams stops the app on errors a broker can cause transiently (e.g. "not
    leader for partition" while a just-created topic elects its leader).
    Exactly-once makes starting over safe: nothing after the last checkpoint was
    committed, and the Redis writes are fenced by offset. A fresh process (``execv``)
    rather than a new `Application` in this one, so no half-closed consumer or producer
    survives. A SIGTERM during the back-off just exits.
    """
    attempt = _restarts_before() + 1 if ran_for < HEALTHY_AFTER_SECONDS else 0
    delay = min(30.0, 2.0**attempt)
    log.warning("restarting in %.0f s (restart %d in a row)", delay, attempt + 1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    time.sleep(delay)
    _reexec(attempt)


def _start_over(waited: float) -> None:
    """What the commit watchdog does: no back-off, the commit waited long already."""
    report_stuck(waited)
    _reexec(_restarts_before() + 1)


def _reexec(attempt: int) -> None:
    """This process becomes a fresh processor (from any thread: the others end with it)."""
    os.environ[RESTARTS_ENV] = str(attempt)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "processor"])


def _restarts_before() -> int:
    """How many restarts in a row led to this process (-1 for a fresh start)."""
    return int(os.environ.get(RESTARTS_ENV, "-1"))


if __name__ == "__main__":
    main()
