"""Replicas that start together race to create the same topics: the loser must wait for
the broker to list what the winner created, never fail (docs: processor/app.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from quixstreams.models.topics.exceptions import TopicNotFoundError

import processor.app as app_module
from processor.settings import ProcessorSettings


def flaky_build(failures: int) -> tuple[list[int], Callable[[ProcessorSettings], object], object]:
    """A build that finds the topic missing ``failures`` times, then succeeds."""
    calls: list[int] = []
    built = object()

    def build(settings: ProcessorSettings) -> object:
        calls.append(1)
        if len(calls) <= failures:
            raise TopicNotFoundError('Topic "t.dlq" not found on the broker')
        return built

    return calls, build, built


def test_a_topic_not_listed_yet_is_retried_until_the_broker_lists_it(monkeypatch):
    calls, build, built = flaky_build(failures=2)
    monkeypatch.setattr(app_module, "_build_app", build)
    monkeypatch.setattr(app_module.time, "sleep", lambda s: None)
    assert app_module.build_app(ProcessorSettings()) is built
    assert len(calls) == 3


def test_a_topic_that_never_appears_fails_after_the_start_up_timeout(monkeypatch):
    calls, build, _ = flaky_build(failures=10**9)
    clock = iter(range(0, 10**6, 10))  # each look at the clock: 10 s later
    monkeypatch.setattr(app_module, "_build_app", build)
    monkeypatch.setattr(app_module.time, "sleep", lambda s: None)
    monkeypatch.setattr(app_module.time, "monotonic", lambda: next(clock))
    with pytest.raises(TopicNotFoundError):
        app_module.build_app(ProcessorSettings(kafka_startup_timeout_seconds=30))
    assert 2 <= len(calls) <= 5
