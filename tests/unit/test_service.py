"""Every service starts the same way (`wikipulse.service`): a bad setting is one message
and exit status 1, never a stack trace; logging, the stop signals and /metrics follow
the settings, in that order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.support.paths import ROOT
from wikipulse import service
from wikipulse.settings import ServiceSettings


@pytest.fixture
def started(monkeypatch):
    """What `start` set up, in order, without a real logging set-up or metrics server;
    the signal handlers as they were are put back afterwards."""
    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(service, "setup_logging", lambda level: calls.append(("log", level)))
    monkeypatch.setattr(service, "serve_metrics", lambda port: calls.append(("metrics", port)))
    before = {signum: signal.getsignal(signum) for signum in service.STOP_SIGNALS}
    yield calls
    for signum, handler in before.items():
        signal.signal(signum, handler)


def test_a_service_logs_at_its_level_then_serves_its_metrics(started, monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("METRICS_PORT", "9123")
    settings = service.start(ServiceSettings, "wikipulse-test")
    assert (settings.log_level, settings.metrics_port) == ("DEBUG", 9123)
    assert started == [("log", "DEBUG"), ("metrics", 9123)]


def test_a_bad_setting_ends_the_service_with_what_is_wrong(started, monkeypatch):
    monkeypatch.setenv("METRICS_PORT", "70000")
    with pytest.raises(SystemExit) as stopped:
        service.start(ServiceSettings, "wikipulse-test")
    message = str(stopped.value.code)
    assert message.startswith("wikipulse-test: bad configuration:")
    assert "metrics_port" in message
    assert started == []  # nothing logged or served with settings that are wrong


def test_sigterm_and_sigint_ask_the_service_to_stop(started):
    asked: list[str] = []
    service.start(ServiceSettings, "wikipulse-test", on_stop=asked.append)
    os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGINT)
    assert asked == ["SIGTERM", "SIGINT"]


def test_without_a_stop_callback_the_signals_are_left_to_what_the_service_runs(started):
    """Quix Streams' `Application.run` and uvicorn handle SIGTERM themselves."""
    before = signal.getsignal(signal.SIGTERM)
    service.start(ServiceSettings, "wikipulse-test")
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("module", ["producer", "processor", "dashboard", "dashboard.cli"])
def test_each_entry_point_refuses_a_bad_setting_in_one_message_not_a_traceback(module):
    program = {"dashboard.cli": "wikipulse"}.get(module, f"wikipulse-{module}")
    argv = ["top"] if module == "dashboard.cli" else []
    env = {**os.environ, "LOG_LEVEL": "loud"}
    result = subprocess.run(
        [sys.executable, "-m", module, *argv],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    # (a library may print a deprecation warning on import before it)
    message = result.stderr[result.stderr.find(f"{program}: bad configuration:") :]
    assert message.startswith(f"{program}: bad configuration:"), result.stderr
    assert "unknown log level 'loud'" in message


def run_rebuild(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "processor.rebuild", *argv],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_rebuild_refuses_a_bad_setting_in_one_message_not_a_traceback():
    result = run_rebuild("--prefix", "new:", LOG_LEVEL="loud")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "wikipulse rebuild: bad configuration:" in result.stderr
    assert "unknown log level 'loud'" in result.stderr


@pytest.mark.parametrize("seconds", ["0", "-30"])
def test_the_rebuild_refuses_a_window_length_the_processor_would_refuse(seconds):
    """Its window length is a setting like the processor's own, checked the same way
    (before anything is read from Kafka or written to Redis)."""
    result = run_rebuild("--prefix", "new:", "--window-seconds", seconds)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "wikipulse rebuild: bad configuration:" in result.stderr
    assert "window_seconds" in result.stderr
