"""How a service starts: its settings, its logging, its stop signals, its ``/metrics``.

The producer, the processor and the dashboard start the same way (`start`), so a
setting is refused, a level logged and a port served alike in all three; what differs
is only what each runs afterwards. The ``wikipulse`` CLI reads its settings the same
way (`load_settings`) and, being no service, neither logs nor serves metrics.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from wikipulse.observability import serve_metrics, setup_logging
from wikipulse.settings import ServiceSettings

AnySettings = TypeVar("AnySettings", bound=BaseSettings)
Settings = TypeVar("Settings", bound=ServiceSettings)
#: What a service does when asked to stop: called with the signal's name.
OnStop = Callable[[str], None]
#: The signals that ask a service to stop: from a supervisor, and Ctrl-C.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def load_settings(settings_class: type[AnySettings], program: str) -> AnySettings:
    """``settings_class`` read from the environment.

    A bad setting ends the program (exit status 1) with what is wrong, behind
    ``<program>: bad configuration:``: a person misconfigured it, a stack trace would
    only hide which variable.
    """
    try:
        return settings_class()
    except ValidationError as exc:
        sys.exit(f"{program}: bad configuration: {exc}")


def start(
    settings_class: type[Settings], program: str, *, on_stop: OnStop | None = None
) -> Settings:
    """Start a service: its settings (`load_settings`), logging at ``LOG_LEVEL``, then
    with ``on_stop`` the stop signals (SIGTERM, SIGINT) handed to it, then ``/metrics``
    and the health endpoints on ``METRICS_PORT`` (`wikipulse.observability`).

    Without ``on_stop`` the signals are left to what the service runs, which handles
    them itself (Quix Streams' ``Application.run`` finishes its checkpoint, uvicorn its
    requests).
    """
    settings = load_settings(settings_class, program)
    setup_logging(settings.log_level)
    if on_stop is not None:
        stop_on_signals(on_stop)
    serve_metrics(settings.metrics_port)
    return settings


def stop_on_signals(on_stop: OnStop) -> None:
    """SIGTERM and SIGINT call ``on_stop`` with the signal's name (in the main thread,
    where an exception it raises interrupts what that thread was doing)."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        on_stop(signal.Signals(signum).name)

    for signum in STOP_SIGNALS:
        signal.signal(signum, handle)
