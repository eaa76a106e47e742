"""The Helm chart of deploy/helm/wikipulse, rendered by a real `helm` (tests/deploy).

`helm` is the one `scripts/ensure-deploy-tools.sh` builds from the Go module proxy into
``.cache/bin`` (or any on PATH); ``WIKIPULSE_REQUIRE_DEPLOY_TOOLS=1`` (set by ``make
test``) turns a missing tool into a failure instead of a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "wikipulse"
RULES = ROOT / "deploy" / "prometheus"
#: the values files every render is checked with: the defaults, then each of ci/
VALUES: list[Path | None] = [None, *sorted((CHART / "ci").glob("*.yaml"))]

Manifest = dict[str, Any]


def tool(name: str) -> str:
    """The path of ``name`` (the deploy tier's own build first); skip or fail without it."""
    found = ROOT / ".cache" / "bin" / name
    if found.is_file() and os.access(found, os.X_OK):
        return str(found)
    on_path = shutil.which(name)
    if on_path:
        return on_path
    why = f"{name} is missing: scripts/ensure-deploy-tools.sh installs it"
    if os.environ.get("WIKIPULSE_REQUIRE_DEPLOY_TOOLS"):
        pytest.fail(why)
    pytest.skip(why)


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("helm"), *args], capture_output=True, text=True, timeout=120, check=False
    )


def render(values: Path | None = None, *sets: str, schema: bool = True) -> list[Manifest]:
    """Every manifest ``helm template`` renders with ``values`` and ``--set`` ``sets``
    (without ``schema``, past values.schema.json: what the templates alone make)."""
    args = ["template", "wp", str(CHART)] + ([] if schema else ["--skip-schema-validation"])
    if values is not None:
        args += ["-f", str(values)]
    for one in sets:
        args += ["--set", one]
    done = helm(*args)
    assert done.returncode == 0, done.stderr
    return [m for m in yaml.safe_load_all(done.stdout) if m]


def refused(*sets: str) -> str:
    """What ``helm template`` says when it refuses ``sets`` (it must refuse them)."""
    args = ["template", "wp", str(CHART)]
    for one in sets:
        args += ["--set", one]
    done = helm(*args)
    assert done.returncode != 0, f"rendered with {sets}"
    return done.stderr


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def named(manifests: list[Manifest], kind: str, component: str) -> Manifest:
    (found,) = [
        m
        for m in of_kind(manifests, kind)
        if m["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    return found


#: the kinds that run pods: the producer is a StatefulSet of one, the others Deployments
WORKLOADS = ("Deployment", "StatefulSet")


def workload(manifests: list[Manifest], component: str) -> Manifest:
    """The one Deployment or StatefulSet that runs ``component``."""
    (found,) = [
        m
        for m in manifests
        if m["kind"] in WORKLOADS
        and m["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    return found


def containers(manifests: list[Manifest]) -> list[tuple[str, Manifest, Manifest]]:
    """(component, pod spec, container) of every workload."""
    found = []
    for deployment in [m for m in manifests if m["kind"] in WORKLOADS]:
        pod = deployment["spec"]["template"]["spec"]
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        for container in pod["containers"]:
            found.append((component, pod, container))
    return found
