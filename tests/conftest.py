"""Fixtures only: real Kafka and Redis per session, unique names and a replay server per
test. What they build on lives in `tests.support` and `devtools` (tests import those,
never this file).

The tiers are folders, marked here by where a test lives:

- ``unit``: pure code and the Quix pipeline in-process; no server at all;
- ``contract``: the Redis contract (`wikipulse.store`) against a real Redis only;
- ``integration``: the services as processes against real Kafka and Redis;
- ``faults``: one injected fault per scenario, on the whole running pipeline;
- ``docker``: docker compose for real (selected only under ``make test-docker``).
- ``deploy``: the Helm chart and alert rules, by real helm and promtool; no cluster.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devtools.replay import ReplayServer
from devtools.servers import Services, provide
from tests.support.names import Names
from tests.support.pipeline import Pipeline

TIERS = ("unit", "contract", "integration", "faults", "docker", "deploy")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
        if "faults" in parts:
            item.add_marker(pytest.mark.integration)
    if not os.environ.get("WIKIPULSE_CLUSTER_ALL"):
        more = [item for item in items if item.get_closest_marker("cluster_more")]
        if more:
            config.hook.pytest_deselected(items=more)
            items[:] = [item for item in items if not item.get_closest_marker("cluster_more")]
    if not os.environ.get("DOCKER_COMPOSE"):
        # the Compose tests need what `make test-docker` provides (tests/docker/engine.sh)
        docker = [item for item in items if "docker" in item.path.parts]
        if docker:
            config.hook.pytest_deselected(items=docker)
            items[:] = [item for item in items if "docker" not in item.path.parts]


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """A real Kafka broker and a real Redis for the whole session."""
    with provide() as found:
        yield found


@pytest.fixture(scope="session")
def cluster() -> Iterator[Services]:
    """A three-broker KRaft cluster (local servers, always: the cluster scenarios kill and
    restart its brokers through ``cluster.local``) and a Redis, for the whole session."""
    with provide(need=("cluster", "redis")) as found:
        yield found


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis alone (the contract tier needs no Kafka, so starts none)."""
    with provide(need=("redis",)) as found:
        yield found.redis_url


@pytest.fixture
def names() -> Names:
    return Names.fresh()


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
    pipe = Pipeline(services, names, tmp_path, sse_url=replay.url)
    yield pipe
    pipe.stop_all()


@pytest.fixture
def redis_client(services: Services) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(services.redis_url)
    yield client
    client.close()
