"""The operators' kinds the chart renders, as JSON schemas of the fields it can use.

`kubernetes_validate` bundles Kubernetes' own schemas only, so a KafkaTopic (Strimzi),
a ScaledObject (KEDA), a ServiceMonitor and a PrometheusRule (Prometheus Operator) are
checked here instead: written by hand from each operator's documented CRD, strict
(``additionalProperties: false``) wherever the CRD is, so a misspelt field fails as it
would at ``kubectl apply`` instead of being dropped. Each names only the fields in use or
close to them: a field left out fails here until it is added, deliberately.
"""

from __future__ import annotations

from typing import Any

#: a Prometheus duration as the Prometheus Operator's CRDs check it (``30s``, ``1h30m``)
UNITS = ("y", "w", "d", "h", "m", "s", "ms")
DURATION = {
    "type": "string",
    "pattern": "^(0|" + "".join(f"(([0-9]+){unit})?" for unit in UNITS) + ")$",
}
STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253}


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


def _kind(api_version: str, kind: str, spec: dict[str, Any], **labels: Any) -> dict[str, Any]:
    metadata = _object(
        ["name"],
        name=NAME,
        namespace=NAME,
        labels={**STRINGS, "required": sorted(labels), "properties": labels},
        annotations=STRINGS,
    )
    return _object(
        ["apiVersion", "kind", "metadata", "spec"],
        apiVersion={"const": api_version},
        kind={"const": kind},
        metadata=metadata,
        spec=spec,
    )


SELECTOR = _object(
    [],
    matchLabels=STRINGS,
    matchExpressions={"type": "array", "items": {"type": "object"}},
)

#: Strimzi's topic operator: kafka.strimzi.io/v1beta2 KafkaTopic
KAFKA_TOPIC = _kind(
    "kafka.strimzi.io/v1beta2",
    "KafkaTopic",
    _object(
        [],
        topicName={"type": "string", "minLength": 1},
        partitions={"type": "integer", "minimum": 1},
        replicas={"type": "integer", "minimum": 1, "maximum": 32767},
        config={
            "type": "object",
            "additionalProperties": {"type": ["string", "integer", "number", "boolean"]},
        },
    ),
    **{"strimzi.io/cluster": {"type": "string", "minLength": 1}},
)

#: the metadata of KEDA's `kafka` scaler (keda.sh docs, "Apache Kafka"); values are strings
KAFKA_SCALER = {
    "bootstrapServers",
    "consumerGroup",
    "topic",
    "lagThreshold",
    "activationLagThreshold",
    "offsetResetPolicy",
    "allowIdleConsumers",
    "scaleToZeroOnInvalidOffset",
    "excludePersistentLag",
    "limitToPartitionsWithLag",
    "ensureEvenDistributionOfPartitions",
    "partitionLimitation",
    "version",
    "sasl",
    "tls",
    "unsafeSsl",
}
TRIGGER = _object(
    ["type", "metadata"],
    type={"type": "string"},
    name={"type": "string"},
    metadata=STRINGS,
    authenticationRef=_object(
        ["name"],
        name={"type": "string"},
        kind={"enum": ["TriggerAuthentication", "ClusterTriggerAuthentication"]},
    ),
    metricType={"enum": ["AverageValue", "Value", "Utilization"]},
    useCachedMetrics={"type": "boolean"},
)
TRIGGER["if"] = {"properties": {"type": {"const": "kafka"}}}
TRIGGER["then"] = {
    "properties": {
        "metadata": {
            "required": ["bootstrapServers", "consumerGroup"],
            "propertyNames": {"enum": sorted(KAFKA_SCALER)},
            "properties": {
                "offsetResetPolicy": {"enum": ["latest", "earliest"]},
                "allowIdleConsumers": {"enum": ["true", "false"]},
            },
        }
    }
}
COUNT = {"type": "integer", "minimum": 0}

#: KEDA: keda.sh/v1alpha1 ScaledObject
SCALED_OBJECT = _kind(
    "keda.sh/v1alpha1",
    "ScaledObject",
    _object(
        ["scaleTargetRef", "triggers"],
        scaleTargetRef=_object(
            ["name"],
            name={"type": "string"},
            kind={"type": "string"},
            apiVersion={"type": "string"},
            envSourceContainerName={"type": "string"},
        ),
        pollingInterval=COUNT,
        initialCooldownPeriod=COUNT,
        cooldownPeriod=COUNT,
        idleReplicaCount=COUNT,
        minReplicaCount=COUNT,
        maxReplicaCount=COUNT,
        advanced={"type": "object"},
        fallback={"type": "object"},
        triggers={"type": "array", "minItems": 1, "items": TRIGGER},
    ),
)

ENDPOINT = _object(
    [],
    port={"type": "string"},
    targetPort={"type": ["string", "integer"]},
    path={"type": "string"},
    scheme={"enum": ["http", "https"]},
    interval=DURATION,
    scrapeTimeout=DURATION,
    honorLabels={"type": "boolean"},
    honorTimestamps={"type": "boolean"},
    params={"type": "object"},
    relabelings={"type": "array"},
    metricRelabelings={"type": "array"},
    tlsConfig={"type": "object"},
    authorization={"type": "object"},
    basicAuth={"type": "object"},
    followRedirects={"type": "boolean"},
    enableHttp2={"type": "boolean"},
    filterRunning={"type": "boolean"},
)

#: the Prometheus Operator: monitoring.coreos.com/v1 ServiceMonitor
SERVICE_MONITOR = _kind(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    _object(
        ["selector"],
        selector=SELECTOR,
        namespaceSelector=_object(
            [], any={"type": "boolean"}, matchNames={"type": "array", "items": {"type": "string"}}
        ),
        endpoints={"type": "array", "items": ENDPOINT},
        jobLabel={"type": "string"},
        targetLabels={"type": "array", "items": {"type": "string"}},
        podTargetLabels={"type": "array", "items": {"type": "string"}},
        sampleLimit=COUNT,
        targetLimit=COUNT,
        attachMetadata={"type": "object"},
    ),
)

RULE = {
    **_object(
        ["expr"],
        alert={"type": "string", "minLength": 1},
        record={"type": "string", "minLength": 1},
        expr={"type": ["string", "integer"]},
        labels=STRINGS,
        annotations=STRINGS,
        keep_firing_for=DURATION,
        **{"for": DURATION},
    ),
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
}

#: the Prometheus Operator: monitoring.coreos.com/v1 PrometheusRule
PROMETHEUS_RULE = _kind(
    "monitoring.coreos.com/v1",
    "PrometheusRule",
    _object(
        ["groups"],
        groups={
            "type": "array",
            "items": _object(
                ["name", "rules"],
                name={"type": "string", "minLength": 1},
                interval=DURATION,
                query_offset=DURATION,
                limit=COUNT,
                labels=STRINGS,
                partial_response_strategy={"type": "string"},
                rules={"type": "array", "items": RULE},
            ),
        },
    ),
)

#: each operator kind the chart may render, and its schema
SCHEMAS: dict[str, dict[str, Any]] = {
    "KafkaTopic": KAFKA_TOPIC,
    "ScaledObject": SCALED_OBJECT,
    "ServiceMonitor": SERVICE_MONITOR,
    "PrometheusRule": PROMETHEUS_RULE,
}
