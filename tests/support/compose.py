"""Driving a Compose project of the project's own files from a test, and reading what
it counted: the Docker tier's shared part (tests/docker)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import redis

from devtools.observe import indexed_windows, wait_for, window_counts
from devtools.servers import free_port
from devtools.truth import truth
from tests.support.paths import ARTIFACTS, ROOT

REPLAY_TOPIC = "replay.recentchange"  # the topic named in the replay server's SSE ids
PREFIX = "wikipulse:"  # REDIS_KEY_PREFIX in docker-compose.yml


@dataclass
class Stack:
    """One Compose project of docker-compose.yml (with the overrides ``COMPOSE_FILE`` in
    ``env`` names, if any), on free host ports."""

    project: str
    env: dict[str, str]
    window_seconds: int
    figures: dict[str, object] = field(default_factory=dict)
    #: the host port variable of the Redis the windows are read from (a failover moves it)
    reads_from: str = "REDIS_HOST_PORT"

    def compose(self, *args: str, timeout: float = 900, check: bool = True) -> str:
        command = [*shlex.split(self.env["DOCKER_COMPOSE"]), "-p", self.project]
        command += ["--profile", "replay", *args]
        result = subprocess.run(
            command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check:
            assert result.returncode == 0, f"{shlex.join(command)}\n{result.stdout}{result.stderr}"
        return result.stdout

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "-q", service).split()

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", service)

    @property
    def redis(self) -> redis.Redis:
        return redis.Redis(port=int(self.env[self.reads_from]))

    def port(self, name: str) -> int:
        return int(self.env[name])


#: The host ports docker-compose.yml publishes, each set to a free one.
HOST_PORTS = ("KAFKA_HOST_PORT", "REDIS_HOST_PORT", "DASHBOARD_HOST_PORT", "REPLAY_HOST_PORT")


@contextlib.contextmanager
def project(
    name: str, window_seconds: int, more_ports: tuple[str, ...] = (), **settings: str
) -> Iterator[Stack]:
    """A Compose project ``wikipulse-<name>-<pid>`` on free host ports (`HOST_PORTS`
    and ``more_ports``) with ``settings`` in its environment; brought down with its
    volumes afterwards, its figures written to ``artifacts/docker/compose-<name>.json``."""
    if not os.environ.get("DOCKER_COMPOSE"):
        pytest.fail("run through `make test-docker`: it provides the engine, Compose and images")
    env = {
        **os.environ,
        "WINDOW_SECONDS": str(window_seconds),
        **settings,
        **{port: str(free_port()) for port in (*HOST_PORTS, *more_ports)},
    }
    built = Stack(f"wikipulse-{name}-{os.getpid()}", env, window_seconds)
    try:
        yield built
    finally:
        built.compose("down", "-v", "--remove-orphans", "--timeout", "10", check=False)
        folder = ARTIFACTS / "docker"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"compose-{name}.json").write_text(json.dumps(built.figures, indent=2) + "\n")
        print(f"\ncompose {name} figures: {json.dumps(built.figures)}")


def docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"docker {' '.join(args)}\n{result.stderr}"
    return result.stdout.strip()


def complete_windows(stack: Stack) -> dict[int, Counter[str]]:
    """Every window in the index, with its leaderboard."""
    client = stack.redis
    try:
        return {w: window_counts(client, PREFIX, w) for w in indexed_windows(client, PREFIX)}
    finally:
        client.close()


def first_offset(stack: Stack) -> int:
    """The first replay offset served to the producer, from the replay server's log."""
    for line in stack.logs("replay").splitlines():
        if "starts at offset" in line and "ground truth" not in line:
            return int(line.rsplit(" ", 1)[1])
    raise AssertionError(f"the producer never connected:\n{stack.logs('replay')[-2000:]}")


def served_since(stack: Stack, offset: int, until_ms: int) -> list[bytes]:
    """What the replay server serves from ``offset`` on, read with the standard library
    only, up to the first event stamped at or after ``until_ms``."""
    last_id = json.dumps([{"topic": REPLAY_TOPIC, "partition": 0, "offset": offset - 1}])
    headers = {"User-Agent": "WikiPulse-e2e/1 (ground truth)", "Last-Event-ID": last_id}
    url = f"http://127.0.0.1:{stack.port('REPLAY_HOST_PORT')}/v2/stream/recentchange"
    payloads: list[bytes] = []
    buffer = b""
    with httpx.stream("GET", url, headers=headers, timeout=30) as response:
        for chunk in response.iter_bytes():
            buffer += chunk
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                data = b"\n".join(
                    line[6:] for line in frame.split(b"\n") if line.startswith(b"data: ")
                )
                payloads.append(data)
                try:
                    stamped = json.loads(data)["meta"]["dt"]
                except (ValueError, KeyError, TypeError):
                    continue
                if _ms(stamped) >= until_ms:
                    return payloads
    raise AssertionError("the replay stream ended")


def _ms(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def assert_exact_and_gapless(stack: Stack, since: int = 0) -> int:
    """Every complete window from ``since`` on equals the independent count, and no
    window is missing between the first and the last; returns how many were checked."""
    window_ms = stack.window_seconds * 1000
    have = {w: c for w, c in complete_windows(stack).items() if w >= since}
    assert have, "no complete window"
    newest = max(have)
    payloads = served_since(stack, first_offset(stack), newest + window_ms + 1000)
    expected = truth(payloads, window_ms)
    first_served = min(expected)
    checked = {w: c for w, c in have.items() if w >= first_served}
    for start, counts in sorted(checked.items()):
        assert counts == expected.get(start, Counter()), f"window {start} is not exact"
    starts = sorted(checked)
    gaps = [s for s in range(starts[0], starts[-1], window_ms) if s not in checked]
    assert not gaps, f"windows missing from the index: {gaps}"
    return len(checked)


def wait_for_new_windows(stack: Stack, after: int, count: int, timeout: float) -> None:
    wait_for(
        lambda: len([w for w in complete_windows(stack) if w > after]) >= count,
        timeout,
        lambda: f"{count} complete windows after {after}\n{stack.logs('processor')[-3000:]}",
        interval=1.0,
    )
