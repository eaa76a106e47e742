"""What the health endpoints say: /livez only about a loop of failures, /healthz also
about a recount and with the warnings, a Kafka topic a broker's loss could empty."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from processor import metrics as processor_metrics
from wikipulse import observability
from wikipulse.kafka import Protection
from wikipulse.redis_client import transient


def get(path: str) -> tuple[int, str]:
    app = observability._app(lambda environ, start: [b"metrics"])
    found: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        found["status"] = int(status.split()[0])

    body = b"".join(app({"PATH_INFO": path}, start_response))
    return found.get("status", 200), body.decode()


@pytest.fixture(autouse=True)
def healthy() -> Iterator[None]:
    processor_metrics.RESTARTS_IN_A_ROW.set(1)
    processor_metrics.RECOUNTING.set(0)
    yield
    processor_metrics.RESTARTS_IN_A_ROW.set(0)
    processor_metrics.RECOUNTING.set(0)
    observability.warn("test", None)


def test_a_healthy_service_says_ok_everywhere():
    assert get("/livez") == (200, "ok")
    status, body = get("/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok", "warnings": []}
    assert get("/metrics") == (200, "metrics")


def test_a_recount_is_not_ready_but_alive():
    """Killing a recounting processor would only start the recount over."""
    processor_metrics.RECOUNTING.set(2)
    assert get("/livez")[0] == 200
    status, body = get("/healthz")
    assert status == 503 and "recounting 2 partitions" in json.loads(body)["reason"]


def test_a_loop_of_failures_fails_both():
    processor_metrics.RESTARTS_IN_A_ROW.set(3)
    status, text = get("/livez")
    assert status == 503 and "3 restarts in a row" in text
    assert get("/healthz")[0] == 503


def test_a_warning_degrades_without_failing():
    observability.warn("test", "topic t has 1 replica(s)")
    status, body = get("/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "degraded", "warnings": ["topic t has 1 replica(s)"]}
    observability.warn("test", None)
    assert json.loads(get("/healthz")[1])["status"] == "ok"


@pytest.mark.parametrize(
    ("replicas", "min_insync", "brokers", "unprotected"),
    [
        (3, 2, 3, False),
        (3, 1, 3, True),  # one in sync suffices: a write on one broker alone is acknowledged
        (1, 1, 3, True),  # the 45 % loss
        (2, 2, 5, True),
        (1, 1, 1, False),  # a single broker cannot do better: nothing to report
        (3, None, 3, True),  # not described: not vouched for
    ],
)
def test_a_topic_is_protected_with_three_replicas_and_two_in_sync(
    replicas, min_insync, brokers, unprotected
):
    problem = Protection("raw", replicas, min_insync, brokers).problem
    assert (problem is not None) == unprotected
    if problem:
        assert "raw" in problem and "docs/operations.md" in problem


@pytest.mark.parametrize(
    ("error", "waited_out"),
    [
        (redis.ConnectionError("refused"), True),
        (redis.TimeoutError("slow"), True),
        (redis.ReadOnlyError("You can't write against a read only replica."), True),
        (redis.ResponseError("NOREPLICAS Not enough good replicas to write."), True),
        (redis.exceptions.MasterDownError("Link with MASTER is down"), True),
        (redis.exceptions.BusyLoadingError("Redis is loading the dataset"), True),
        (redis.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), True),
        (redis.ResponseError("ERR wrong number of arguments"), False),
        (redis.exceptions.NoPermissionError("NOPERM"), False),
        (redis.AuthenticationError("WRONGPASS"), True),  # a ConnectionError in redis-py
    ],
)
def test_what_a_writer_waits_out_and_what_it_reports(error, waited_out):
    assert transient(error) is waited_out
