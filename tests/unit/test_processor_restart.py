"""A processor whose app fails starts over in a fresh process, backing off while it repeats."""

from __future__ import annotations

import os
import signal
import time

import pytest

import processor.__main__ as entry


class FailingApp:
    def run(self) -> None:
        raise RuntimeError("Broker: Not leader for partition")


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    seen: dict[str, object] = {}
    monkeypatch.setattr(entry, "build_app", lambda settings: FailingApp())
    monkeypatch.setattr(entry, "serve_metrics", lambda port: None)
    monkeypatch.setattr(time, "sleep", lambda s: seen.setdefault("slept", s))
    monkeypatch.setattr(os, "execv", lambda path, argv: seen.setdefault("argv", argv))
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    monkeypatch.delenv(entry.RESTARTS_ENV, raising=False)
    return seen


def test_a_failed_run_re_executes_the_processor_after_a_second(captured):
    entry.main()
    assert captured["argv"][1:] == ["-m", "processor"]
    assert captured["slept"] == 1.0


def test_repeated_quick_failures_back_off_up_to_30_seconds(captured, monkeypatch):
    monkeypatch.setenv(entry.RESTARTS_ENV, "3")
    entry.main()
    assert captured["slept"] == 16.0
    assert os.environ[entry.RESTARTS_ENV] == "4"
    captured.clear()
    monkeypatch.setenv(entry.RESTARTS_ENV, "9")
    entry.main()
    assert captured["slept"] == 30.0
