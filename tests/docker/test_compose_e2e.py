"""`docker compose up` for real: the project's own docker-compose.yml, exact windows.

Run through ``make test-docker`` (``tests/docker/engine.sh``), which provides a Docker
engine, a Compose v2 command (``DOCKER_COMPOSE``) and images (official, or offline
stand-ins where nothing can be pulled). The steps run in order on one stack, as a user
would meet them, with the replay profile as the stream:

1. ``--profile replay up -d --scale processor=3``: every complete window equals an
   independent count of what the replay server served to the producer;
2. one processor container SIGKILLed: no window missing, every one still exact;
3. scaled 3 -> 1 -> 3: still exact, still no gap;
4. Redis's volume removed and Redis started afresh: the processors count every window
   again from Kafka, exactly;
5. ``down`` then ``up`` with the volumes kept: the windows finalized before are
   unchanged and new ones arrive within a minute;
6. ``down -v``: no container, network or volume of the project is left.

Figures (build time, time from ``up`` to the first complete window, windows checked)
are printed and written to ``artifacts/docker/compose-e2e.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from devtools.observe import wait_for
from tests.support.compose import (
    Stack,
    assert_exact_and_gapless,
    complete_windows,
    docker,
    project,
    wait_for_new_windows,
)

WINDOW_SECONDS = 10  # short windows: a few minutes cover every step
GRACE_SECONDS = 5


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # BACKFILL=0: from the live end (the backfill is tested on its own)
    with project("e2e", WINDOW_SECONDS, GRACE_SECONDS=str(GRACE_SECONDS), BACKFILL="0") as built:
        yield built


# ---------------------------------------------------------------- the steps


def test_1_up_with_three_processors_gives_exact_windows(stack: Stack) -> None:
    began = time.monotonic()
    stack.compose("build")
    stack.figures["build_seconds"] = round(time.monotonic() - began, 1)
    began = time.monotonic()
    stack.compose("up", "-d", "--scale", "processor=3", "--wait", "--wait-timeout", "300")
    stack.figures["up_seconds"] = round(time.monotonic() - began, 1)
    wait_for(lambda: complete_windows(stack), 240, lambda: stack.logs("processor")[-4000:], 0.5)
    stack.figures["seconds_from_up_to_first_window"] = round(time.monotonic() - began, 1)
    assert len(stack.containers("processor")) == 3
    wait_for_new_windows(stack, min(complete_windows(stack)), 4, 120)
    stack.figures["windows_checked_after_up"] = assert_exact_and_gapless(stack)

    # what the dashboard shows is what Redis holds, on the host port published on 127.0.0.1
    dashboard = f"http://127.0.0.1:{stack.port('DASHBOARD_HOST_PORT')}"
    newest = httpx.get(f"{dashboard}/api/windows?limit=1", timeout=10).json()[0]
    assert newest["total"] == sum(complete_windows(stack)[newest["start"]].values())
    assert httpx.get(f"{dashboard}/healthz", timeout=10).json() == {"status": "ok"}


def test_2_a_sigkilled_processor_loses_no_window(stack: Stack) -> None:
    victim = stack.containers("processor")[1]
    before = max(complete_windows(stack))
    docker("kill", "--signal", "KILL", victim)
    state = json.loads(docker("inspect", "--format", "{{json .State}}", victim))
    assert state["ExitCode"] == 137 and not state["Running"], state  # died by SIGKILL
    wait_for_new_windows(stack, before, 4, 180)
    stack.figures["windows_checked_after_sigkill"] = assert_exact_and_gapless(stack)


def test_3_scaling_3_to_1_to_3_stays_exact(stack: Stack) -> None:
    stack.compose("up", "-d", "--scale", "processor=1", "--no-recreate", "processor")
    assert len(stack.containers("processor")) == 1
    wait_for_new_windows(stack, max(complete_windows(stack)), 3, 180)
    stack.compose("up", "-d", "--scale", "processor=3", "--no-recreate", "processor")
    assert len(stack.containers("processor")) == 3
    wait_for_new_windows(stack, max(complete_windows(stack)), 3, 180)
    stack.figures["windows_checked_after_scaling"] = assert_exact_and_gapless(stack)


def test_4_processors_start_together_without_a_failure(stack: Stack) -> None:
    """Three replicas on a fresh broker race to create the same topics; none may fail
    (a restart policy would hide it) and none may restart."""
    logs = stack.logs("processor")
    assert "Traceback" not in logs and "the processor failed" not in logs, logs[-4000:]
    for container in stack.containers("processor"):
        assert docker("inspect", "--format", "{{.RestartCount}}", container) == "0"


def test_5_a_wiped_redis_is_counted_again_from_kafka(stack: Stack) -> None:
    """Redis's volume removed and Redis started afresh while the processors run: they
    find Kafka's group ahead of an empty Redis and count the raw topic again."""
    before = complete_windows(stack)
    (old_redis,) = stack.containers("redis")
    stack.compose("stop", "--timeout", "10", "redis")
    stack.compose("rm", "-f", "redis")
    label = f"label=com.docker.compose.project={stack.project}"
    (volume,) = docker(
        "volume",
        "ls",
        "-q",
        "--filter",
        label,
        "--filter",
        "label=com.docker.compose.volume=redis-data",
    ).split()
    docker("volume", "rm", volume)
    began = time.monotonic()
    stack.compose("up", "-d", "--wait", "--wait-timeout", "120", "redis")
    (new_redis,) = stack.containers("redis")
    assert new_redis != old_redis  # a new container on a new volume: nothing kept
    wait_for(
        lambda: set(before) <= set(complete_windows(stack)),
        300,
        lambda: f"the windows before the wipe again\n{stack.logs('processor')[-4000:]}",
        interval=1.0,
    )
    stack.figures["seconds_from_redis_wipe_to_every_window_again"] = round(
        time.monotonic() - began, 1
    )
    after = complete_windows(stack)
    assert {w: after[w] for w in before} == before
    stack.figures["windows_checked_after_redis_wipe"] = assert_exact_and_gapless(stack)
    assert "recounting" in stack.logs("processor")


def test_6_down_and_up_keeps_finalized_windows_and_counting_resumes(stack: Stack) -> None:
    before = complete_windows(stack)
    stack.compose("down", "--timeout", "30")
    began = time.monotonic()
    stack.compose("up", "-d", "--scale", "processor=3", "--wait", "--wait-timeout", "300")
    wait_for_new_windows(stack, max(before), 1, 60 + time.monotonic() - began)
    stack.figures["seconds_from_up_to_new_window_after_restart"] = round(
        time.monotonic() - began, 1
    )
    after = complete_windows(stack)
    assert {w: after.get(w) for w in before} == before


def test_7_the_replay_server_stops_on_sigterm_at_once(stack: Stack) -> None:
    (replay,) = stack.containers("replay")
    began = time.monotonic()
    stack.compose("stop", "--timeout", "20", "replay")
    stack.figures["replay_stop_seconds"] = round(time.monotonic() - began, 1)
    assert docker("inspect", "--format", "{{.State.ExitCode}}", replay) == "0"  # not SIGKILL


def test_8_down_v_leaves_nothing_behind(stack: Stack) -> None:
    stack.compose("down", "-v", "--timeout", "30")
    label = f"label=com.docker.compose.project={stack.project}"
    assert docker("ps", "-aq", "--filter", label) == ""
    assert docker("network", "ls", "-q", "--filter", label) == ""
    assert docker("volume", "ls", "-q", "--filter", label) == ""
