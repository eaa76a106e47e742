"""Shared fixtures: one real Kafka and one real Redis per test session (see services.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from tests.services import Services, provide
from wikipulse.replay import ReplayServer

if TYPE_CHECKING:
    from tests.pipeline import Pipeline

DATA = Path(__file__).parent / "data"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.path.parts or "faults" in item.path.parts:
            item.add_marker(pytest.mark.integration)
        if "faults" in item.path.parts:
            item.add_marker(pytest.mark.faults)
        if "docker" in item.path.parts:
            item.add_marker(pytest.mark.docker)
    if not os.environ.get("DOCKER_COMPOSE"):
        # the Compose tests need what `make test-docker` provides (tests/docker/engine.sh)
        docker = [item for item in items if "docker" in item.path.parts]
        if docker:
            config.hook.pytest_deselected(items=docker)
            items[:] = [item for item in items if "docker" not in item.path.parts]


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    with provide() as found:
        yield found


@dataclass(frozen=True)
class Names:
    """Unique Kafka and Redis names for one test, so tests run in any order."""

    suffix: str

    @property
    def topic(self) -> str:
        return f"test.recentchange.{self.suffix}"

    @property
    def group(self) -> str:
        return f"test-group-{self.suffix}"

    @property
    def prefix(self) -> str:
        return f"test:{self.suffix}:"


@pytest.fixture
def names() -> Names:
    return Names(uuid.uuid4().hex[:10])


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    """A Wikimedia-like SSE server on a free port, with an empty event log."""
    with ReplayServer() as server:
        yield server


@pytest.fixture
def pipeline(
    services: Services, names: Names, replay: ReplayServer, tmp_path: Path
) -> Iterator[Pipeline]:
    """Services of one test, fed by ``replay``; every process is killed at the end."""
    from tests.pipeline import Pipeline

    pipe = Pipeline(services, names, tmp_path, sse_url=replay.url)
    yield pipe
    pipe.stop_all()


@pytest.fixture
def redis_client(services: Services) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(services.redis_url)
    yield client
    client.close()
