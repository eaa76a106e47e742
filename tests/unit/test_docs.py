"""The reference docs say what the code does: regenerated or checked against it."""

from __future__ import annotations

import re

from prometheus_client import REGISTRY

import processor.metrics
import producer.metrics
import wikipulse.kafka
import wikipulse.redis_client
from devtools import configdoc
from tests.support.paths import ROOT

# imported for their registrations
assert processor.metrics and producer.metrics and wikipulse.kafka and wikipulse.redis_client


def test_the_configuration_reference_is_generated_from_the_settings():
    written = (ROOT / "docs" / "configuration.md").read_text()
    assert written == configdoc.render(), "docs/configuration.md is stale: run `make docs`"


def test_every_metric_the_docs_name_exists():
    metrics = list(REGISTRY.collect())
    exported = {metric.name for metric in metrics}
    exported |= {f"{metric.name}_total" for metric in metrics if metric.type == "counter"}
    docs = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    named = {m for path in docs for m in re.findall(r"wikipulse_[a-z_]+", path.read_text())}
    assert named, "the docs name no metric at all"
    assert named <= exported, f"named in the docs but not exported: {named - exported}"
