"""The Helm chart's rules, on what a real `helm` renders (deploy/helm/wikipulse).

No Kubernetes cluster can be started on these machines: what can be checked without one
is checked here, on the defaults and on every values file under the chart's ``ci/``: the
chart lints strictly, every manifest is valid for Kubernetes 1.30 and 1.33 (strict
schemas, `kubernetes_validate`), the producer can never run twice, the processor never
more replicas than partitions, every container is locked down and probed, no credential
is ever in a manifest, and every variable set is a setting its service reads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from jsonschema import Draft202012Validator, ValidationError
from pydantic_settings import BaseSettings

from dashboard.settings import DashboardSettings
from devtools import configdoc
from processor.settings import ProcessorSettings
from producer.settings import ProducerSettings
from tests.deploy import crds
from tests.support.chart import (
    CHART,
    RULES,
    VALUES,
    Manifest,
    containers,
    helm,
    named,
    of_kind,
    refused,
    render,
    workload,
)
from wikipulse.kafka import MAX_MESSAGE_BYTES, new_topic_config
from wikipulse.settings import KafkaSettings

KUBERNETES = ["1.30.0", "1.33.0"]
#: kinds of operators' CRDs, which the bundled schemas do not know: checked against the
#: fields of their documented CRDs instead (tests/deploy/crds.py)
CUSTOM = set(crds.SCHEMAS)
SETTINGS: dict[str, type[BaseSettings]] = {
    "producer": ProducerSettings,
    "processor": ProcessorSettings,
    "dashboard": DashboardSettings,
}
#: the one variable that is no setting: a Secret's value Kubernetes substitutes into
#: REDIS_URL ($(...)) when the container starts
INDIRECT = "WIKIPULSE_SECRET_REDIS_PASSWORD"
ids = ["defaults"] + [p.stem for p in VALUES[1:] if p is not None]


@pytest.fixture(scope="module", params=VALUES, ids=ids)
def rendered(request: pytest.FixtureRequest) -> list[Manifest]:
    return render(request.param)


def test_the_chart_lints_strictly_with_every_values_file() -> None:
    for values in VALUES:
        args = ["lint", "--strict", str(CHART)] + (["-f", str(values)] if values else [])
        done = helm(*args)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("version", KUBERNETES)
def test_every_manifest_is_valid_for_kubernetes(rendered: list[Manifest], version: str) -> None:
    checked = 0
    for manifest in rendered:
        if manifest["kind"] in CUSTOM:
            continue
        kubernetes_validate.validate(manifest, version, strict=True)
        checked += 1
    assert checked >= 6  # the 3 workloads, their Services, the PDBs at least


def test_every_operator_kind_has_the_fields_of_its_crd(rendered: list[Manifest]) -> None:
    """What Kubernetes' schemas cannot check: the operators' kinds, against the fields
    their CRDs document (strict where the CRD is; no schema of the CRD is bundled)."""
    for manifest in rendered:
        if manifest["kind"] in CUSTOM:
            Draft202012Validator(crds.SCHEMAS[manifest["kind"]]).validate(manifest)
            continue
        # anything else is Kubernetes' own, which the test above validates
        group = manifest["apiVersion"].rpartition("/")[0]
        assert "." not in group or group.endswith(".k8s.io"), manifest["kind"]


def _floats(node: Any, where: str) -> list[str]:
    if isinstance(node, float):
        return [f"{where}: {node}"]
    if isinstance(node, dict):
        return [f for k, v in node.items() for f in _floats(v, f"{where}.{k}")]
    if isinstance(node, list):
        return [f for i, v in enumerate(node) for f in _floats(v, f"{where}[{i}]")]
    return []


def test_no_number_is_rendered_as_a_float(rendered: list[Manifest]) -> None:
    """Helm reads every number of the values as a float and writes a large one as
    6.048e+08: nothing the chart renders is a float (Kubernetes and Kafka read them as
    integers and refuse that)."""
    found = [f for m in rendered for f in _floats(m, f"{m['kind']}/{m['metadata']['name']}")]
    assert found == []


def test_every_operator_kind_is_rendered_by_some_values_file() -> None:
    kinds = {m["kind"] for values in VALUES for m in render(values)}
    assert kinds >= CUSTOM


@pytest.mark.parametrize(
    ("kind", "path", "change"),
    [
        ("ScaledObject", ["spec"], {"maxReplicasCount": 6}),
        ("ScaledObject", ["spec", "triggers", 0, "metadata"], {"lagThresold": "10"}),
        ("ScaledObject", ["spec", "triggers", 0, "metadata"], {"lagThreshold": 10}),
        ("KafkaTopic", ["spec"], {"partitions": "6"}),
        ("KafkaTopic", ["spec"], {"replica": 3}),
        ("KafkaTopic", ["metadata", "labels"], {"strimzi.io/cluster": ""}),
        ("ServiceMonitor", ["spec", "endpoints", 0], {"interval": "30 s"}),
        ("PrometheusRule", ["spec", "groups", 0, "rules", 0], {"fore": "5m"}),
    ],
)
def test_a_field_an_operator_does_not_know_is_caught(kind, path, change) -> None:
    """The check above can fail: a misspelt field, a number where KEDA wants a string."""
    everything = render(VALUES_BY_NAME["everything-values"], "processor.keda.enabled=true")
    manifest = of_kind(everything, kind)[0]
    Draft202012Validator(crds.SCHEMAS[kind]).validate(manifest)
    node = manifest
    for step in path:
        node = node[step]
    node.update(change)
    with pytest.raises(ValidationError):
        Draft202012Validator(crds.SCHEMAS[kind]).validate(manifest)


def test_strict_validation_catches_a_field_kubernetes_does_not_know() -> None:
    """What the test above relies on: a misspelt field fails, it is not ignored."""
    producer = workload(render(), "producer")
    producer["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(producer, KUBERNETES[-1], strict=True)


def _one_producer(rendered: list[Manifest]) -> None:
    """A StatefulSet of one: its pod has one name, so a new one is created only once the
    old one is gone, on an upgrade, an eviction or a deletion alike (a Deployment, even
    with Recreate, replaces a deleted or evicted pod while the old one terminates)."""
    producer = workload(rendered, "producer")
    assert producer["kind"] == "StatefulSet"
    spec = producer["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate"}  # no partition, no surge
    services = of_kind(rendered, "Service")
    (governing,) = [s for s in services if s["metadata"]["name"] == spec["serviceName"]]
    assert governing["spec"]["clusterIP"] == "None"
    assert governing["spec"]["selector"] == spec["selector"]["matchLabels"]
    scaled = of_kind(rendered, "ScaledObject") + of_kind(rendered, "HorizontalPodAutoscaler")
    assert all(s["spec"]["scaleTargetRef"]["name"] != producer["metadata"]["name"] for s in scaled)


def test_the_producer_is_one_and_is_replaced_never_doubled(rendered: list[Manifest]) -> None:
    _one_producer(rendered)


def test_no_value_makes_two_producers() -> None:
    """None of these is a value of the producer (values.schema.json refuses each at
    install), and past the schema the templates still make one producer of them."""
    for sets in (
        ["producer.replicas=2"],
        ["producer.strategy.type=RollingUpdate"],
        ["producer.updateStrategy.rollingUpdate.maxUnavailable=2"],
        ["producer.podManagementPolicy=Parallel"],
        ["producer.keda.enabled=true", "processor.keda.enabled=true"],
    ):
        assert "additional properties" in refused(*sets), sets
        _one_producer(render(None, *sets, schema=False))


def _partitions(rendered: list[Manifest]) -> int:
    processor = workload(rendered, "processor")
    (env,) = [
        e["value"]
        for e in processor["spec"]["template"]["spec"]["containers"][0]["env"]
        if e["name"] == "RAW_TOPIC_PARTITIONS"
    ]
    return int(env)


def test_processor_replicas_never_exceed_the_partitions(rendered: list[Manifest]) -> None:
    processor = workload(rendered, "processor")
    partitions = _partitions(rendered)
    scaled = of_kind(rendered, "ScaledObject")
    if scaled:
        (keda,) = scaled
        assert keda["spec"]["maxReplicaCount"] == partitions
        assert keda["spec"]["minReplicaCount"] <= partitions
        assert "replicas" not in processor["spec"]  # KEDA owns the count
        (trigger,) = keda["spec"]["triggers"]
        assert trigger["metadata"]["allowIdleConsumers"] == "false"
        surge = 0
    else:
        assert 1 <= processor["spec"]["replicas"] <= partitions
        surge = processor["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    top = processor["spec"].get("replicas", partitions) + surge
    assert top <= partitions, "a rollout would run a replica without a partition"


def test_keda_without_credentials_for_a_secured_kafka_is_refused() -> None:
    sets = ["processor.keda.enabled=true", "kafka.securityProtocol=SSL"]
    assert "processor.keda.authenticationRef is needed" in refused(*sets)
    render(None, *sets, "processor.keda.authenticationRef=wikipulse-kafka")


def test_more_processor_replicas_than_partitions_is_refused() -> None:
    said = refused("processor.replicas=7", "kafka.partitions=6")
    assert "exceeds kafka.partitions" in said
    render(None, "processor.replicas=6", "kafka.partitions=6")  # as many is fine


def test_disruptions_take_one_processor_at_a_time(rendered: list[Manifest]) -> None:
    budget = named(rendered, "PodDisruptionBudget", "processor")
    processor = workload(rendered, "processor")
    assert budget["spec"]["maxUnavailable"] == 1
    # a recounting (unready) processor never holds a drain: its recount resumes elsewhere
    assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    selector = processor["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["selector"]["matchLabels"] == selector


def test_every_container_is_locked_down_sized_and_probed(rendered: list[Manifest]) -> None:
    found = containers(rendered)
    assert {component for component, _, _ in found} == {"producer", "processor", "dashboard"}
    for component, pod, container in found:
        where = f"{component}/{container['name']}"
        security = container["securityContext"]
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] != 0, where
        assert security["runAsNonRoot"] is True, where
        assert security["readOnlyRootFilesystem"] is True, where
        assert security["allowPrivilegeEscalation"] is False, where
        assert security["capabilities"] == {"drop": ["ALL"]}, where
        for context in (pod["securityContext"], security):
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), where
        assert "memory" in resources["limits"], where
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["path"] in ("/livez", "/healthz"), where
        # what the service writes goes to an emptyDir, never to the image
        volumes = {v["name"]: v for v in pod["volumes"]}
        for mount in container["volumeMounts"]:
            volume = volumes[mount["name"]]
            assert "emptyDir" in volume or "secret" in volume, where
            assert "secret" not in volume or mount.get("readOnly"), where
        assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), where


def test_the_probes_ask_what_each_service_answers(rendered: list[Manifest]) -> None:
    """Liveness on /livez (a restart loop: what a restart fixes), readiness of the
    producer and processor on /healthz (also 503 while recounting), the dashboard's on
    its own /livez (its /healthz goes 503 when windows are stale: for alerts)."""
    for component, _, container in containers(rendered):
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == 9100
        live, ready = container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]
        assert live["path"] == "/livez"
        if component == "dashboard":
            assert ready == {"path": "/livez", "port": "http"}
            assert live["port"] == "http"
        else:
            assert ready == {"path": "/healthz", "port": "metrics"}
            assert live["port"] == "metrics"


def _env(container: Manifest) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = container["env"]
    return env


def test_every_variable_is_a_setting_its_service_reads(rendered: list[Manifest]) -> None:
    for component, _, container in containers(rendered):
        known = {name.upper() for name in SETTINGS[component].model_fields}
        env = _env(container)
        names = [e["name"] for e in env]
        assert len(names) == len(set(names)), f"{component}: a variable set twice"
        for variable in env:
            if variable["name"] == INDIRECT:
                assert any(f"$({INDIRECT})" in e.get("value", "") for e in env), component
                continue
            assert variable["name"] in known, f"{component}: {variable['name']} is no setting"


def test_a_setting_the_service_does_not_read_is_caught() -> None:
    """The check above can fail: a misspelt variable in a rendered container (the chart
    refuses one in a `settings:` map, below, so it is put in by hand here)."""
    rendered = render()
    container = workload(rendered, "processor")["spec"]["template"]["spec"]["containers"][0]
    container["env"].append({"name": "WINDOW_TTL_SECOND", "value": "60"})
    with pytest.raises(AssertionError, match="WINDOW_TTL_SECOND is no setting"):
        test_every_variable_is_a_setting_its_service_reads(rendered)


def test_the_chart_refuses_a_setting_its_service_does_not_read() -> None:
    """At install, not only here: pydantic-settings ignores an unknown variable, so a
    misspelt one would do nothing. A setting of another service is refused too."""
    said = refused("processor.settings.WINDOW_TTL_SECOND=60")
    assert "WINDOW_TTL_SECOND is not a setting of the processor" in said
    assert "not a setting of the dashboard" in refused("dashboard.settings.DEDUP_IDS=100000")
    assert "not a setting of the producer" in refused("producer.settings.REDIS_WAIT_REPLICAS=1")
    render(None, "processor.settings.window_ttl_seconds=60")  # any case, as the services


def test_the_charts_list_of_settings_is_generated_from_the_settings_classes() -> None:
    """files/settings.yaml, which the chart checks `settings:` names against, is what
    `make docs` writes from the same classes as docs/configuration.md."""
    written = (CHART / "files" / "settings.yaml").read_text()
    assert written == configdoc.render_chart_settings(), "files/settings.yaml: run `make docs`"
    listed = yaml.safe_load(written)
    for component, settings in SETTINGS.items():
        assert listed[component] == sorted(n.upper() for n in settings.model_fields)


def test_a_settings_map_cannot_set_what_the_chart_sets() -> None:
    """Each variable the chart sets from its own values (in any values file) is refused
    in that component's `settings:`: set twice, the values would not say which wins."""
    for component in SETTINGS:
        chart_sets: set[str] = set()
        for values in VALUES:
            extra = {}
            if values is not None:
                extra = (yaml.safe_load(values.read_text()).get(component) or {}).get(
                    "settings", {}
                )
            for found, _, container in containers(render(values)):
                if found == component:
                    chart_sets |= {e["name"] for e in _env(container)} - set(extra)
        assert chart_sets
        for name in sorted(chart_sets):
            said = refused(f"{component}.settings.{name}=1")
            assert "never a value" in said or "set by the chart" in said, (component, name)


def _ref(name: str, key: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": name, "key": key}}


#: each value of values.yaml that reaches a variable: the `--set`s, the variable, and what
#: it then is (a value, or where Kubernetes takes it from)
TO_VARIABLES: list[tuple[tuple[str, ...], str, str | dict[str, Any]]] = [
    (("kafka.bootstrapServers=k:9092",), "KAFKA_BROKER_ADDRESS", "k:9092"),
    (("kafka.rawTopic=raw.x",), "RAW_TOPIC", "raw.x"),
    (("kafka.partitions=12",), "RAW_TOPIC_PARTITIONS", "12"),
    (("kafka.replicationFactor=3",), "RAW_TOPIC_REPLICATION_FACTOR", "3"),
    (("kafka.minInsyncReplicas=2",), "RAW_TOPIC_MIN_INSYNC_REPLICAS", "2"),
    (("kafka.securityProtocol=SSL",), "KAFKA_SECURITY_PROTOCOL", "SSL"),
    (("kafka.sasl.mechanism=PLAIN",), "KAFKA_SASL_MECHANISM", "PLAIN"),
    (("kafka.sasl.username=u",), "KAFKA_SASL_USERNAME", "u"),
    (
        ("kafka.sasl.passwordSecret.name=s", "kafka.sasl.passwordSecret.key=k"),
        "KAFKA_SASL_PASSWORD",
        _ref("s", "k"),
    ),
    (
        ("kafka.caSecret.name=ca", "kafka.caSecret.key=k.pem"),
        "KAFKA_SSL_CA_LOCATION",
        "/etc/wikipulse/kafka-ca/k.pem",
    ),
    (("redis.url=redis://r:1/3",), "REDIS_URL", "redis://r:1/3"),
    (
        ("redis.passwordSecret.name=s", "redis.passwordSecret.key=k"),
        INDIRECT,
        _ref("s", "k"),
    ),
    (("redis.keyPrefix=x:",), "REDIS_KEY_PREFIX", "x:"),
    (("redis.sentinels=s:26379",), "REDIS_SENTINELS", "s:26379"),
    (("redis.sentinels=s:1", "redis.sentinelMaster=m"), "REDIS_SENTINEL_MASTER", "m"),
    (
        ("redis.sentinelPasswordSecret.name=s", "redis.sentinelPasswordSecret.key=k"),
        "REDIS_SENTINEL_PASSWORD",
        _ref("s", "k"),
    ),
    (("logLevel=DEBUG",), "LOG_LEVEL", "DEBUG"),
    (("metrics.port=9200",), "METRICS_PORT", "9200"),
    (("producer.sseUrl=http://sse",), "SSE_URL", "http://sse"),
    (("producer.userAgent=UA/1.0 (ops)",), "USER_AGENT", "UA/1.0 (ops)"),
    (("producer.backfill=0",), "BACKFILL", "0"),
    (("processor.consumerGroup=g",), "CONSUMER_GROUP", "g"),
    (("processor.windowSeconds=60",), "WINDOW_SECONDS", "60"),
    (("processor.graceSeconds=9",), "GRACE_SECONDS", "9"),
    (("processor.sessionTimeoutSeconds=25",), "SESSION_TIMEOUT_SECONDS", "25"),
    (("dashboard.port=8080",), "DASHBOARD_PORT", "8080"),
    (("dashboard.staleAfterSeconds=300",), "STALE_AFTER_SECONDS", "300"),
]
#: the values that shape Kubernetes objects only (and reach no variable), by prefix;
#: `settings` maps are variables by name, checked by the tests above
KUBERNETES_ONLY = (
    "image.",
    "imagePullSecrets",
    "metrics.serviceMonitor.",
    "metrics.prometheusRule.",
    "podSecurityContext.",
    "securityContext.",
    "redis.caSecret.name",  # a volume: the URL's ssl_ca_certs names the file
    "strimzi.topics.",
    "networkPolicy.",
    *(
        f"{component}.{key}"
        for component in SETTINGS
        for key in (
            "enabled",
            "settings",
            "replicas",
            "resources.",
            "nodeSelector",
            "tolerations",
            "affinity",
            "podAnnotations",
            "podDisruptionBudget.",
            "terminationGracePeriodSeconds",
            "keda.",
            "service.",
            "ingress.",
        )
    ),
)


def _leaves(values: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key, value in values.items():
        if isinstance(value, dict) and value:
            found += _leaves(value, f"{prefix}{key}.")
        else:
            found.append(f"{prefix}{key}")
    return found


def test_every_value_reaches_a_setting_or_shapes_kubernetes_alone() -> None:
    """Every value of values.yaml either maps to a variable (TO_VARIABLES, each checked
    below) or is one of Kubernetes' own (KUBERNETES_ONLY): a value added without either
    fails here, and so does a mapping to a value that is gone."""
    leaves = set(_leaves(yaml.safe_load((CHART / "values.yaml").read_text())))
    mapped = {one.split("=")[0] for sets, _, _ in TO_VARIABLES for one in sets}
    assert mapped <= leaves, mapped - leaves
    rest = {leaf for leaf in leaves - mapped if not leaf.startswith(KUBERNETES_ONLY)}
    assert rest == set(), f"values that reach no setting: {sorted(rest)}"


SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def _schema_leaves(node: dict[str, Any], prefix: str = "") -> list[str]:
    """The values the schema describes: a key whose own keys are free (a map, an
    object Kubernetes defines) is a leaf, as are those of values.yaml."""
    found = []
    for key, child in node.get("properties", {}).items():
        if key == "global":  # Helm's own, for subcharts
            continue
        if child.get("additionalProperties") is False:
            found += _schema_leaves(child, f"{prefix}{key}.")
        else:
            found.append(f"{prefix}{key}")
    return found


def test_the_schema_describes_exactly_the_values_of_values_yaml() -> None:
    """values.schema.json refuses any key it does not name (a misspelt one would do
    nothing), so it names every value of values.yaml, and none that is not there."""
    leaves = _leaves(yaml.safe_load((CHART / "values.yaml").read_text()))
    described = _schema_leaves(SCHEMA)

    # values.yaml's leaves below a free object (resources.requests.cpu) are that object
    def within(leaf: str, node: str) -> bool:
        return leaf == node or leaf.startswith(node + ".")

    undescribed = {leaf for leaf in leaves if not any(within(leaf, d) for d in described)}
    assert undescribed == set(), sorted(undescribed)
    phantoms = {d for d in described if not any(within(leaf, d) for leaf in leaves)}
    assert phantoms == set(), sorted(phantoms)


@pytest.mark.parametrize(
    ("sets", "said"),
    [
        (["procesor.replicas=2"], "additional properties 'procesor' not allowed"),
        (["processor.replica=3"], "at '/processor': additional properties 'replica'"),
        (["dashboard.ingress.tls=true"], "additional properties 'tls'"),
        (["kafka.partitions=six"], "at '/kafka/partitions': got string, want integer"),
        (["kafka.securityProtocol=SASL"], "at '/kafka/securityProtocol'"),
        (["logLevel=loud"], "at '/logLevel'"),
        (["redis.sentinels=sentinel-0"], "at '/redis/sentinels'"),
        (["redis.url=localhost:6379"], "at '/redis/url'"),
        (["processor.windowSeconds=0"], "at '/processor/windowSeconds'"),
        (["processor.sessionTimeoutSeconds=3"], "at '/processor/sessionTimeoutSeconds'"),
        (["producer.userAgent=curl"], "at '/producer/userAgent'"),
        (["dashboard.service.type=Internal"], "at '/dashboard/service/type'"),
        (["processor.settings.WINDOW_TTL_SECONDS[0]=1"], "at '/processor/settings/"),
    ],
    ids=lambda one: one[0] if isinstance(one, list) else "",
)
def test_a_misspelt_or_mistyped_value_is_refused_at_install(sets: list[str], said: str) -> None:
    assert said in refused(*sets)


def _bounds(node: dict[str, Any]) -> dict[str, Any]:
    """The limits a JSON schema node sets on a number (of its one non-null type)."""
    for one in node.get("anyOf", [node]):
        if one.get("type") != "null":
            node = one
    limits = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    return {k: node[k] for k in limits if k in node}


@pytest.mark.parametrize(
    ("path", "variable"),
    [
        (sets[-1].split("=")[0], variable)
        for sets, variable, expected in TO_VARIABLES
        if isinstance(expected, str) and variable != INDIRECT
    ],
)
def test_the_schema_bounds_a_value_as_its_setting_does(path: str, variable: str) -> None:
    """A number the service would refuse at start-up is refused at install instead, and
    none it takes is refused: the schema's limits are the setting's own. A string may be
    held to more (no empty bootstrap list, topic or group: nothing runs on one)."""
    (field,) = {
        json.dumps(found): found
        for settings in SETTINGS.values()
        if (found := settings.model_json_schema()["properties"].get(variable.lower()))
    }.values()
    node = SCHEMA
    for key in path.split("."):
        node = node["properties"][key]
    assert _bounds(node) == _bounds(field)
    assert node.get("minLength", 0) >= field.get("minLength", 0)


@pytest.mark.parametrize(
    ("sets", "variable", "expected"),
    TO_VARIABLES,
    ids=[variable for _, variable, _ in TO_VARIABLES],
)
def test_every_structured_value_reaches_a_setting(sets, variable, expected) -> None:
    """Each value that maps to a variable, changed, changes that variable in every
    service that reads it (and docs/configuration.md documents it)."""
    reference = (Path(CHART).parents[2] / "docs" / "configuration.md").read_text()
    assert variable == INDIRECT or f"`{variable}`" in reference, variable
    found = [
        e.get("value", e.get("valueFrom"))
        for _, _, container in containers(render(None, *sets))
        for e in _env(container)
        if e["name"] == variable
    ]
    assert found and all(one == expected for one in found), (sets, found)


def test_credentials_come_only_from_secrets(rendered: list[Manifest]) -> None:
    assert not of_kind(rendered, "Secret"), "the chart never writes a Secret"
    for component, _, container in containers(rendered):
        for variable in _env(container):
            if re.search("PASSWORD|SECRET|TOKEN", variable["name"]):
                assert "value" not in variable, (component, variable["name"])
                assert "secretKeyRef" in variable["valueFrom"], (component, variable["name"])
            if variable["name"] == "REDIS_URL":
                authority = re.sub("^[a-z]+://", "", variable["value"]).split("/")[0]
                if "@" in authority:
                    assert authority.split("@")[0].endswith(f":$({INDIRECT})"), variable


def test_a_credential_written_as_a_value_is_refused() -> None:
    assert "holds a password" in refused("redis.url=redis://:hunter2@redis:6379/0")
    assert "holds a password" in refused("redis.url=redis://app:hunter2@redis:6379/0")
    assert "never a value" in refused("processor.settings.KAFKA_SASL_PASSWORD=x")
    assert "never a value" in refused("dashboard.settings.REDIS_SENTINEL_PASSWORD=x")
    assert "kafka.sasl.passwordSecret" in refused("kafka.securityProtocol=SASL_SSL")
    render(None, "redis.url=redis://app@redis:6379/0")  # a user alone is no secret


def test_a_redis_password_reaches_the_url_from_its_secret() -> None:
    rendered = render(None, "redis.url=rediss://app@r:6380/2", "redis.passwordSecret.name=rs")
    for component in ("processor", "dashboard"):
        env = {
            e["name"]: e
            for e in _env(
                workload(rendered, component)["spec"]["template"]["spec"]["containers"][0]
            )
        }
        assert env["REDIS_URL"]["value"] == f"rediss://app:$({INDIRECT})@r:6380/2"
        reference = env[INDIRECT]["valueFrom"]["secretKeyRef"]
        assert reference == {"name": "rs", "key": "redis-password"}
        names = list(env)
        # Kubernetes substitutes only variables defined before the one that uses them
        assert names.index(INDIRECT) < names.index("REDIS_URL")


def test_sentinels_are_given_to_every_redis_client() -> None:
    rendered = render(VALUES_BY_NAME["sentinel-redis-values"])
    for component in ("processor", "dashboard"):
        container = workload(rendered, component)["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in _env(container)}
        assert env["REDIS_SENTINELS"]["value"].count(":26379") == 3
        assert env["REDIS_SENTINEL_MASTER"]["value"] == "mymaster"
        assert "secretKeyRef" in env["REDIS_SENTINEL_PASSWORD"]["valueFrom"]
    producer = workload(rendered, "producer")["spec"]["template"]["spec"]["containers"][0]
    assert not any(e["name"].startswith("REDIS") for e in _env(producer))


VALUES_BY_NAME = {p.stem: p for p in VALUES if p is not None}


def test_kafka_over_sasl_ssl_mounts_the_ca_and_reads_the_password_from_its_secret() -> None:
    rendered = render(VALUES_BY_NAME["sasl-ssl-kafka-values"])
    for component in ("producer", "processor"):
        pod = workload(rendered, component)["spec"]["template"]["spec"]
        env = {e["name"]: e for e in _env(pod["containers"][0])}
        assert env["KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "wikipulse"
        ca = env["KAFKA_SSL_CA_LOCATION"]["value"]
        mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
        assert str(Path(ca).parent) in mounts and mounts[str(Path(ca).parent)]["readOnly"]


def test_strimzi_topics_are_replicated_three_times_with_min_isr_two() -> None:
    rendered = render(VALUES_BY_NAME["sasl-ssl-kafka-values"])
    topics = {t["spec"]["topicName"]: t for t in of_kind(rendered, "KafkaTopic")}
    assert set(topics) == {"wikimedia.recentchange", "wikimedia.recentchange.dlq"}
    for topic in topics.values():
        assert topic["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "events"
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == 2
        assert topic["spec"]["partitions"] == 6  # the dead letters as the processor makes them
        # as the services make them: they may come first
        made = KafkaSettings(raw_topic_replication_factor=3, raw_topic_min_insync_replicas=2)
        for key, value in new_topic_config(made).items():
            assert str(topic["spec"]["config"][key]) == value, key
        assert topic["spec"]["config"]["max.message.bytes"] == MAX_MESSAGE_BYTES
        # Kafka reads a long: never a float Helm writes as 6.048e+08
        assert type(topic["spec"]["config"]["retention.ms"]) is int
    assert topics["wikimedia.recentchange"]["spec"]["config"]["retention.ms"] == 7 * 86_400_000
    for component in ("producer", "processor"):
        env = {e["name"]: e.get("value") for e in _env(_container(rendered, component))}
        assert env["RAW_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["RAW_TOPIC_MIN_INSYNC_REPLICAS"] == "2"
        assert env["RAW_TOPIC_PARTITIONS"] == "6"
    assert not of_kind(render(), "KafkaTopic")  # optional


def test_topics_made_two_ways_are_refused() -> None:
    said = refused("strimzi.topics.enabled=true", "kafka.replicationFactor=2")
    assert "differs from strimzi.topics.replicas" in said
    said = refused("strimzi.topics.enabled=true", "kafka.minInsyncReplicas=1")
    assert "differs from strimzi.topics.minInsyncReplicas" in said


def _container(rendered: list[Manifest], component: str) -> Manifest:
    container: Manifest = workload(rendered, component)["spec"]["template"]["spec"]["containers"][0]
    return container


def test_the_prometheus_rule_is_the_rules_file() -> None:
    """One source: the chart's PrometheusRule is deploy/prometheus's file, as promtool
    tests it (files/ links to it)."""
    (rule,) = of_kind(render(None, "metrics.prometheusRule.enabled=true"), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    source = yaml.safe_load((RULES / "wikipulse.rules.yaml").read_text())
    assert rule["spec"] == source
    assert (CHART / "files" / "wikipulse.rules.yaml").resolve() == (
        RULES / "wikipulse.rules.yaml"
    ).resolve()


def test_optional_parts_render_when_asked() -> None:
    rendered = render(VALUES_BY_NAME["everything-values"])
    kinds = {m["kind"] for m in rendered}
    assert {"Ingress", "NetworkPolicy", "ServiceMonitor", "PrometheusRule", "KafkaTopic"} <= kinds
    (monitor,) = of_kind(rendered, "ServiceMonitor")
    selected = monitor["spec"]["selector"]["matchLabels"]
    metrics = [
        s
        for s in of_kind(rendered, "Service")
        if all(s["metadata"]["labels"].get(k) == v for k, v in selected.items())
    ]
    assert len(metrics) == 3  # each component's pods scraped
    # even unready: a recounting processor's metrics are what WikiPulseRecounting reads
    assert all(s["spec"]["publishNotReadyAddresses"] is True for s in metrics)
    default = {m["kind"] for m in render()}
    assert not {"Ingress", "NetworkPolicy", "ServiceMonitor", "PrometheusRule"} & default
