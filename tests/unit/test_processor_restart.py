"""A processor whose app fails starts over in a fresh process, backing off while it repeats."""

from __future__ import annotations

import os
import signal
import time

import pytest
from prometheus_client import generate_latest
from quixstreams.exceptions.assignment import PartitionAssignmentError

import processor.__main__ as entry
from processor.metrics import RESTARTS_IN_A_ROW
from wikipulse import health, service


class FailingApp:
    def run(self) -> None:
        raise RuntimeError("Broker: Not leader for partition")


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    seen: dict[str, object] = {}
    monkeypatch.setattr(entry, "build_app", lambda settings: FailingApp())
    monkeypatch.setattr(service, "serve_metrics", lambda port: None)
    monkeypatch.setattr(time, "sleep", lambda s: seen.setdefault("slept", s))
    monkeypatch.setattr(os, "execv", lambda path, argv: seen.setdefault("argv", argv))
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    monkeypatch.delenv(entry.RESTARTS_ENV, raising=False)
    monkeypatch.setenv("COMMIT_WATCHDOG_SECONDS", "0")  # no Quix app to watch here
    return seen


def test_a_failed_run_re_executes_the_processor_after_a_second(captured):
    entry.main()
    assert captured["argv"][1:] == ["-m", "processor"]
    assert captured["slept"] == 1.0


def test_a_commit_the_watchdog_found_hung_starts_over_at_once(captured):
    """It waited COMMIT_WATCHDOG_SECONDS already: no back-off on top."""
    entry._start_over(121.0)
    assert captured["argv"][1:] == ["-m", "processor"]
    assert "slept" not in captured
    assert os.environ[entry.RESTARTS_ENV] == "0"


def test_repeated_quick_failures_back_off_up_to_30_seconds(captured, monkeypatch):
    monkeypatch.setenv(entry.RESTARTS_ENV, "3")
    entry.main()
    assert captured["slept"] == 16.0
    assert os.environ[entry.RESTARTS_ENV] == "4"
    captured.clear()
    monkeypatch.setenv(entry.RESTARTS_ENV, "9")
    entry.main()
    assert captured["slept"] == 30.0


def test_restarts_in_a_row_are_a_metric_the_healthcheck_turns_red_on(captured, monkeypatch):
    """A processor that starts over in the same container is invisible to a restart
    policy: /metrics says how often in a row, and the healthcheck fails from 3 on."""
    from processor.metrics import RECOUNTING

    RECOUNTING.set(0)  # metrics are per process: another test may have left a recount
    monkeypatch.setenv(entry.RESTARTS_ENV, "2")  # this is the third start in a row
    entry.main()
    assert RESTARTS_IN_A_ROW._value.get() == 3
    text = generate_latest().decode()
    assert "wikipulse_processor_restarts_in_a_row 3.0" in text
    assert health.verdict(text, max_restarts=3) == "3 restarts in a row without a healthy minute"
    assert health.verdict(text.replace(" 3.0", " 2.0"), max_restarts=3) is None


def test_the_start_up_race_is_one_warning_line_not_a_stack_trace(captured, monkeypatch, caplog):
    class RacingApp:
        def run(self) -> None:
            raise PartitionAssignmentError("Broker: Not leader for partition")

    monkeypatch.setattr(entry, "build_app", lambda settings: RacingApp())
    entry.main()
    assert captured["argv"][1:] == ["-m", "processor"]  # it still starts over
    assert not [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"]
    assert any("could not take its partitions yet" in r.getMessage() for r in caplog.records)


def test_the_healthcheck_fails_when_metrics_do_not_answer():
    with pytest.raises(SystemExit, match="does not answer"):
        health.main(["http://127.0.0.1:9/metrics"])


def test_the_healthcheck_is_red_while_partitions_are_recounted_from_kafka():
    """After Redis lost writes the windows are behind until the recount catches up."""
    from processor.metrics import RECOUNTING

    RECOUNTING.set(2)
    try:
        text = generate_latest().decode()
        assert health.verdict(text, max_restarts=3) == (
            "recounting 2 partitions from Kafka after Redis lost writes"
        )
    finally:
        RECOUNTING.set(0)
    assert health.verdict(generate_latest().decode(), max_restarts=3) is None
