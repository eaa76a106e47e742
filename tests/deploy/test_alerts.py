"""The alert rules of deploy/prometheus, checked and unit-tested by a real `promtool`.

Every alert has cases in wikipulse.rules.test.yaml where it fires (with the words it
says) and where it must not; and every metric a rule reads is one the services export,
so renaming a metric in the code turns this red instead of silencing an alert.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import dashboard.app  # noqa: F401  (each import registers its service's metrics)
import processor.metrics  # noqa: F401
import producer.metrics  # noqa: F401
import wikipulse.kafka
import wikipulse.redis_client  # noqa: F401
from processor.records import Verdict
from tests.support.chart import RULES, tool

RULES_FILE = RULES / "wikipulse.rules.yaml"
TESTS_FILE = RULES / "wikipulse.rules.test.yaml"
#: metrics of other exporters a rule may read, and which one exports them
EXTERNAL = {"kafka_consumergroup_lag": "a Kafka exporter (Strimzi's Kafka Exporter)"}
BUILTIN = {"time", "min", "max", "sum", "by", "rate", "increase", "deriv", "absent", "or", "and"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], capture_output=True, text=True, timeout=120, check=False
    )


def alerts() -> list[dict[str, object]]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_rules_are_valid() -> None:
    done = promtool("check", "rules", str(RULES_FILE))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_behaves_as_its_unit_tests_say() -> None:
    done = promtool("test", "rules", str(TESTS_FILE))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_does_not() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(TESTS_FILE.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {str(rule["alert"]) for rule in alerts()}
    assert names == fires, names ^ fires
    assert names == quiet, names ^ quiet


def test_a_broken_threshold_fails_the_unit_tests(tmp_path: Path) -> None:
    """The unit tests can fail: the stale-windows threshold raised tenfold."""
    text = RULES_FILE.read_text()
    assert " > 180\n" in text
    (tmp_path / RULES_FILE.name).write_text(text.replace(" > 180\n", " > 1800\n"))
    (tmp_path / TESTS_FILE.name).write_text(TESTS_FILE.read_text())
    done = promtool("test", "rules", str(tmp_path / TESTS_FILE.name))
    assert done.returncode != 0
    assert "WikiPulseWindowsStale" in done.stdout + done.stderr


def exported() -> set[str]:
    """Every sample name the services' metrics produce (counters with ``_total``)."""
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
    return names


def unknown_metrics(rules: list[dict[str, object]]) -> list[str]:
    """The metrics ``rules`` read that no service exports (nor a known exporter)."""
    known = exported()
    unknown = []
    for rule in rules:
        expression = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^\]]*\]', "", str(rule["expr"]))
        for name in set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expression)) - BUILTIN:
            if name in ("partition", "consumergroup", "topic"):
                continue  # labels of `by (...)`
            if name not in known and name not in EXTERNAL:
                unknown.append(f"{rule['alert']}: {name}")
    return unknown


def test_every_metric_an_alert_reads_is_exported() -> None:
    assert unknown_metrics(alerts()) == []


def labels_of() -> dict[str, set[str]]:
    """The label names of every sample name the services export (prometheus_client keeps
    them private: a metric's ``_labelnames``, even before it has a sample)."""
    found: dict[str, set[str]] = {}
    for collector, names in list(REGISTRY._collector_to_names.items()):
        labels = getattr(collector, "_labelnames", None)
        if labels is None:  # a collector of its own (RecordTally): its families say
            families = collector.collect()
            labels = [n for family in families for n in getattr(family, "_labelnames", ())]
        for name in names:
            found[name] = set(labels)
    return found


#: label values a rule matches exactly, and where the code lists them
VALUES = {("wikipulse_processor_records_total", "verdict"): set(Verdict.ALL)}
#: labels of the external metrics (kafka_exporter's, as Strimzi's Kafka Exporter has them)
EXTERNAL_LABELS = {"kafka_consumergroup_lag": {"consumergroup", "topic", "partition"}}


def unknown_labels(rules: list[dict[str, object]]) -> list[str]:
    """The labels ``rules`` match or group by that their metrics do not have."""
    known = {**labels_of(), **EXTERNAL_LABELS}
    unknown = []
    for rule in rules:
        expression = str(rule["expr"])
        read = set()
        for metric, selector in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expression):
            read.add(metric)
            for label, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', selector):
                if label not in known.get(metric, set()):
                    unknown.append(f"{rule['alert']}: {metric} has no label {label}")
                elif op == "=" and value not in VALUES.get((metric, label), {value}):
                    unknown.append(f"{rule['alert']}: {metric}{{{label}}} is never {value!r}")
        read |= set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expression)) & set(known)
        for grouping in re.findall(r"\bby\s*\(([^)]*)\)", expression):
            for label in filter(None, (g.strip() for g in grouping.split(","))):
                if not any(label in known[metric] for metric in read):
                    unknown.append(f"{rule['alert']}: no metric it reads has label {label}")
    return unknown


def test_every_label_an_alert_matches_or_groups_by_is_exported() -> None:
    """A renamed label (or verdict) would leave its alert quiet for good, as a renamed
    metric would."""
    assert unknown_labels(alerts()) == []


def test_a_renamed_label_is_caught() -> None:
    rules = alerts()
    (dead,) = [r for r in rules if r["alert"] == "WikiPulseDeadLetters"]
    (stale,) = [r for r in rules if r["alert"] == "WikiPulseWindowsStale"]
    broken = [
        {**dead, "expr": str(dead["expr"]).replace('verdict="invalid"', 'kind="invalid"')},
        {**dead, "expr": str(dead["expr"]).replace('"invalid"', '"dead"')},
        {**stale, "expr": str(stale["expr"]).replace("by (partition)", "by (partiton)")},
    ]
    assert unknown_labels(broken) == [
        "WikiPulseDeadLetters: wikipulse_processor_records_total has no label kind",
        "WikiPulseDeadLetters: wikipulse_processor_records_total{verdict} is never 'dead'",
        "WikiPulseWindowsStale: no metric it reads has label partiton",
    ]


def test_a_renamed_metric_is_caught() -> None:
    rules = alerts()
    (partial,) = [r for r in rules if r["alert"] == "WikiPulseWindowsPublishedPartial"]
    renamed = {**partial, "expr": str(partial["expr"]).replace("partial_total", "partials_total")}
    assert unknown_metrics([renamed]) == [
        "WikiPulseWindowsPublishedPartial: wikipulse_processor_windows_partials_total"
    ]
