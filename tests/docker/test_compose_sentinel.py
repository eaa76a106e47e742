"""`docker compose` with docker-compose.sentinel.yml for real: Redis as a primary, two
replicas and three Sentinels, the primary's container killed mid-stream.

Run through ``make test-docker`` (``tests/docker/engine.sh``), as the other Compose
tests, with the replay profile as the stream and two processors. In order:

1. ``up``: every Redis node and Sentinel healthy (Compose gates the services on them),
   `redis` the primary with both replicas, every complete window exact;
2. the primary's container SIGKILLed (``docker kill``): the Sentinels promote a replica,
   the processors and the dashboard follow it without a restart, windows keep coming,
   every one exact and none missing across the failover;
3. the old primary started again: it rejoins as a replica of the new one, and the
   windows stay exact.

Figures go to ``artifacts/docker/compose-sentinel.json``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from devtools.observe import wait_for
from tests.support.compose import (
    Stack,
    assert_exact_and_gapless,
    complete_windows,
    docker,
    project,
    wait_for_new_windows,
)

WINDOW_SECONDS = 10
#: each Redis node of the override, and the variable of its host port
NODES = {
    "redis": "REDIS_HOST_PORT",
    "redis-replica-1": "REDIS_REPLICA_1_HOST_PORT",
    "redis-replica-2": "REDIS_REPLICA_2_HOST_PORT",
}
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with project(
        "sentinel",
        WINDOW_SECONDS,
        more_ports=("REDIS_REPLICA_1_HOST_PORT", "REDIS_REPLICA_2_HOST_PORT"),
        COMPOSE_FILE="docker-compose.yml:docker-compose.sentinel.yml",
        GRACE_SECONDS="5",
        BACKFILL="0",
    ) as built:
        yield built


def primary(stack: Stack) -> str:
    """The node the Sentinels name as primary (asked inside sentinel-3: never killed)."""
    answer = stack.compose(
        "exec", "-T", "sentinel-3", "redis-cli", "-p", "26379",
        "sentinel", "get-master-addr-by-name", "wikipulse",
    )  # fmt: skip
    return answer.split()[0]


def role(stack: Stack, node: str) -> str:
    try:
        found = redis.Redis(port=stack.port(NODES[node]), socket_timeout=2).role()[0]
    except redis.RedisError:
        return "down"
    return found.decode() if isinstance(found, bytes) else str(found)


def restarts(stack: Stack) -> int:
    """Times a processor started over after a failure (it logs it, then re-executes)."""
    return stack.logs("processor").count("the processor failed")


def test_1_up_with_sentinels_gives_exact_windows(stack: Stack) -> None:
    stack.compose("build")
    began = time.monotonic()
    stack.compose("up", "-d", "--scale", "processor=2", "--wait", "--wait-timeout", "420")
    stack.figures["up_seconds"] = round(time.monotonic() - began, 1)
    for service in (*NODES, *SENTINELS):
        (container,) = stack.containers(service)
        assert docker("inspect", "--format", "{{.State.Health.Status}}", container) == "healthy"
    assert primary(stack) == "redis"
    assert [role(stack, node) for node in NODES] == ["master", "slave", "slave"]
    wait_for(lambda: complete_windows(stack), 300, lambda: stack.logs("processor")[-4000:], 0.5)
    stack.figures["seconds_from_up_to_first_window"] = round(time.monotonic() - began, 1)
    wait_for_new_windows(stack, min(complete_windows(stack)), 3, 120)
    stack.figures["windows_checked_after_up"] = assert_exact_and_gapless(stack)
    assert "WAIT for 1 replica(s)" in stack.logs("processor")


def test_2_the_primary_s_container_killed_loses_no_window(stack: Stack) -> None:
    (victim,) = stack.containers("redis")
    before = max(complete_windows(stack))
    began = time.monotonic()
    docker("kill", "--signal", "KILL", victim)
    wait_for(lambda: primary(stack) != "redis", 60, "the Sentinels to promote a replica", 0.5)
    promoted = primary(stack)
    stack.figures["seconds_from_kill_to_new_primary"] = round(time.monotonic() - began, 1)
    stack.figures["new_primary"] = promoted
    stack.reads_from = NODES[promoted]
    wait_for_new_windows(stack, before, 4, 240)
    stack.figures["seconds_from_kill_to_4_new_windows"] = round(time.monotonic() - began, 1)
    stack.figures["windows_checked_across_the_failover"] = assert_exact_and_gapless(stack)
    # the dashboard followed the failover too, by itself
    dashboard = f"http://127.0.0.1:{stack.port('DASHBOARD_HOST_PORT')}"
    newest = httpx.get(f"{dashboard}/api/windows?limit=1", timeout=10).json()
    assert newest and newest[0]["start"] > before, newest
    assert "moved from" in stack.logs("processor"), "no processor saw the primary move"
    stack.figures["processor_restarts"] = restarts(stack)
    assert stack.figures["processor_restarts"] == 0, stack.logs("processor")[-4000:]


def test_3_the_old_primary_rejoins_as_a_replica(stack: Stack) -> None:
    before = max(complete_windows(stack))
    began = time.monotonic()
    stack.compose("start", "redis")
    wait_for(lambda: role(stack, "redis") == "slave", 120, "redis to rejoin as a replica", 1.0)
    stack.figures["seconds_from_start_to_replica"] = round(time.monotonic() - began, 1)
    wait_for_new_windows(stack, before, 3, 180)
    stack.figures["windows_checked_after_rejoin"] = assert_exact_and_gapless(stack)
    assert restarts(stack) == 0
