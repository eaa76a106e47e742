{{/*
Names, labels, and the environment every component shares. The variables are the ones
docs/configuration.md documents; nothing here invents a setting.
*/}}

{{- define "wikipulse.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "wikipulse.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* selector labels of one component: (dict "root" $ "component" "processor") */}}
{{- define "wikipulse.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "wikipulse.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/*
The checks no value may get past: a replica count the raw topic cannot feed, a
credential written into the release (where `helm get values` and the manifests show it),
and a variable in a `settings:` map that the chart sets itself or the service never reads.
*/}}
{{- define "wikipulse.validate" -}}
{{- $partitions := int .Values.kafka.partitions -}}
{{- if lt $partitions 1 -}}
{{- fail "kafka.partitions must be at least 1" -}}
{{- end -}}
{{- if gt (int .Values.processor.replicas) $partitions -}}
{{- fail (printf "processor.replicas (%d) exceeds kafka.partitions (%d): a replica beyond the raw topic's partitions holds none and counts nothing" (int .Values.processor.replicas) $partitions) -}}
{{- end -}}
{{- if and .Values.processor.keda.enabled (gt (int .Values.processor.keda.minReplicas) $partitions) -}}
{{- fail "processor.keda.minReplicas exceeds kafka.partitions" -}}
{{- end -}}
{{- $url := .Values.redis.url -}}
{{- $authority := regexReplaceAll "^[a-z]+://" $url "" | splitList "/" | first -}}
{{- if contains ":" (splitList "@" $authority | initial | join "@") -}}
{{- fail "redis.url holds a password: put it in a Secret and name it in redis.passwordSecret" -}}
{{- end -}}
{{- if not (regexMatch "^rediss?://" $url) -}}
{{- fail "redis.url must start with redis:// or rediss://" -}}
{{- end -}}
{{- $owned := include "wikipulse.owned" . | fromJson -}}
{{- /* what each service reads: generated from its settings class (make docs) */ -}}
{{- $reads := .Files.Get "files/settings.yaml" | fromYaml -}}
{{- range $component := list "producer" "processor" "dashboard" -}}
{{- range $name, $value := (index $.Values $component).settings -}}
{{- if regexMatch "PASSWORD|SECRET|TOKEN" (upper $name) -}}
{{- fail (printf "%s.settings.%s: a credential is never a value; use its passwordSecret" $component $name) -}}
{{- end -}}
{{- if has (upper $name) (index $owned $component) -}}
{{- fail (printf "%s.settings.%s is set by the chart from its own value (values.yaml): set that one instead" $component $name) -}}
{{- end -}}
{{- if not (has (upper $name) (index $reads $component)) -}}
{{- fail (printf "%s.settings.%s is not a setting of the %s (docs/configuration.md lists them): it would do nothing" $component $name $component) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $topics := .Values.strimzi.topics -}}
{{- if $topics.enabled -}}
{{- if and .Values.kafka.replicationFactor (ne (int .Values.kafka.replicationFactor) (int $topics.replicas)) -}}
{{- fail "kafka.replicationFactor differs from strimzi.topics.replicas: the topics would be made differently by whichever comes first" -}}
{{- end -}}
{{- if and .Values.kafka.minInsyncReplicas (ne (int .Values.kafka.minInsyncReplicas) (int $topics.minInsyncReplicas)) -}}
{{- fail "kafka.minInsyncReplicas differs from strimzi.topics.minInsyncReplicas: the topics would be made differently by whichever comes first" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.processor.keda.enabled (ne .Values.kafka.securityProtocol "PLAINTEXT") (not .Values.processor.keda.authenticationRef) -}}
{{- fail (printf "processor.keda.authenticationRef is needed: KEDA reads the lag from Kafka itself, over %s (a TriggerAuthentication with its sasl and tls)" .Values.kafka.securityProtocol) -}}
{{- end -}}
{{- if and (hasPrefix "SASL" .Values.kafka.securityProtocol) (not .Values.kafka.sasl.passwordSecret.name) -}}
{{- fail "kafka.securityProtocol is SASL_*: name the Secret holding the password in kafka.sasl.passwordSecret" -}}
{{- end -}}
{{- end -}}

{{/*
The variables the chart sets from its own values, by component: a `settings:` map that
names one is refused (the variable would be set twice, and which one wins is not what
the values say). tests/deploy checks that each one the chart renders is refused.
*/}}
{{- define "wikipulse.owned" -}}
{{- $service := list "LOG_LEVEL" "METRICS_PORT" -}}
{{- $kafka := list "KAFKA_BROKER_ADDRESS" "RAW_TOPIC" "RAW_TOPIC_PARTITIONS" "RAW_TOPIC_REPLICATION_FACTOR" "RAW_TOPIC_MIN_INSYNC_REPLICAS" "KAFKA_SECURITY_PROTOCOL" "KAFKA_SASL_MECHANISM" "KAFKA_SASL_USERNAME" "KAFKA_SASL_PASSWORD" "KAFKA_SSL_CA_LOCATION" -}}
{{- $redis := list "REDIS_URL" "REDIS_KEY_PREFIX" "REDIS_SENTINELS" "REDIS_SENTINEL_MASTER" "REDIS_SENTINEL_PASSWORD" "WIKIPULSE_SECRET_REDIS_PASSWORD" -}}
{{- $producer := concat $service $kafka (list "SSE_URL" "USER_AGENT" "BACKFILL") -}}
{{- $processor := concat $service $kafka $redis (list "CONSUMER_GROUP" "WINDOW_SECONDS" "GRACE_SECONDS" "SESSION_TIMEOUT_SECONDS" "STATE_DIR") -}}
{{- $dashboard := concat $service $redis (list "DASHBOARD_HOST" "DASHBOARD_PORT" "STALE_AFTER_SECONDS") -}}
{{- dict "producer" $producer "processor" $processor "dashboard" $dashboard | toJson -}}
{{- end -}}

{{/* LOG_LEVEL and METRICS_PORT: every service */}}
{{- define "wikipulse.env.service" -}}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: METRICS_PORT
  value: {{ .Values.metrics.port | quote }}
{{- end -}}

{{/* The Kafka group: producer and processor */}}
{{- define "wikipulse.env.kafka" -}}
{{- $k := .Values.kafka -}}
- name: KAFKA_BROKER_ADDRESS
  value: {{ $k.bootstrapServers | quote }}
- name: RAW_TOPIC
  value: {{ $k.rawTopic | quote }}
- name: RAW_TOPIC_PARTITIONS
  value: {{ $k.partitions | quote }}
{{- /* with Strimzi's topics, a service that creates them first makes them the same */}}
{{- $topics := .Values.strimzi.topics }}
{{- $replicas := $k.replicationFactor | default (and $topics.enabled $topics.replicas) }}
{{- $isr := $k.minInsyncReplicas | default (and $topics.enabled $topics.minInsyncReplicas) }}
{{- if $replicas }}
- name: RAW_TOPIC_REPLICATION_FACTOR
  value: {{ $replicas | quote }}
{{- end }}
{{- if $isr }}
- name: RAW_TOPIC_MIN_INSYNC_REPLICAS
  value: {{ $isr | quote }}
{{- end }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ $k.securityProtocol | quote }}
{{- if $k.sasl.mechanism }}
- name: KAFKA_SASL_MECHANISM
  value: {{ $k.sasl.mechanism | quote }}
{{- end }}
{{- if $k.sasl.username }}
- name: KAFKA_SASL_USERNAME
  value: {{ $k.sasl.username | quote }}
{{- end }}
{{- if $k.sasl.passwordSecret.name }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $k.sasl.passwordSecret.name }}
      key: {{ $k.sasl.passwordSecret.key }}
{{- end }}
{{- if $k.caSecret.name }}
- name: KAFKA_SSL_CA_LOCATION
  value: /etc/wikipulse/kafka-ca/{{ $k.caSecret.key }}
{{- end }}
{{- end -}}

{{/*
The Redis group: processor and dashboard. A password comes from its Secret into
WIKIPULSE_SECRET_REDIS_PASSWORD, which Kubernetes substitutes into REDIS_URL when the
container starts ($(...) expansion): the manifest never holds it. It must be URL-safe
(or percent-encoded in the Secret).
*/}}
{{- define "wikipulse.env.redis" -}}
{{- $r := .Values.redis -}}
{{- if $r.passwordSecret.name }}
- name: WIKIPULSE_SECRET_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $r.passwordSecret.name }}
      key: {{ $r.passwordSecret.key }}
{{- $scheme := regexFind "^[a-z]+://" $r.url }}
{{- $rest := trimPrefix $scheme $r.url }}
{{- $authority := splitList "/" $rest | first }}
{{- $user := "" }}
{{- if contains "@" $authority }}
{{- $user = splitList "@" $authority | first }}
{{- $rest = trimPrefix (printf "%s@" $user) $rest }}
{{- end }}
- name: REDIS_URL
  value: {{ printf "%s%s:$(WIKIPULSE_SECRET_REDIS_PASSWORD)@%s" $scheme $user $rest | quote }}
{{- else }}
- name: REDIS_URL
  value: {{ $r.url | quote }}
{{- end }}
- name: REDIS_KEY_PREFIX
  value: {{ $r.keyPrefix | quote }}
{{- if $r.sentinels }}
- name: REDIS_SENTINELS
  value: {{ $r.sentinels | quote }}
- name: REDIS_SENTINEL_MASTER
  value: {{ $r.sentinelMaster | quote }}
{{- end }}
{{- if $r.sentinelPasswordSecret.name }}
- name: REDIS_SENTINEL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $r.sentinelPasswordSecret.name }}
      key: {{ $r.sentinelPasswordSecret.key }}
{{- end }}
{{- end -}}

{{/* A component's own `settings:` map, as variables (names checked by tests/deploy) */}}
{{- define "wikipulse.env.settings" -}}
{{- range $name, $value := . }}
- name: {{ upper $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* The volumes every pod has: /tmp (the root filesystem is read-only), the Kafka CA */}}
{{- define "wikipulse.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .Values.kafka.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.caSecret.name }}
{{- end }}
{{- if .Values.redis.caSecret.name }}
- name: redis-ca
  secret:
    secretName: {{ .Values.redis.caSecret.name }}
{{- end }}
{{- end -}}

{{- define "wikipulse.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/wikipulse/kafka-ca
  readOnly: true
{{- end }}
{{- if .Values.redis.caSecret.name }}
- name: redis-ca
  mountPath: /etc/wikipulse/redis-ca
  readOnly: true
{{- end }}
{{- end -}}

{{/*
Probes on the metrics port (wikipulse/observability.py):
- /livez fails (503) only when the process starts over in a loop (3 restarts in a row
  without a healthy minute): what a restart from outside can fix;
- /healthz fails (503) while that is so, and while the processor recounts from Kafka
  what Redis lost (its windows lag): the pod is then not ready, and is left to finish.
*/}}
{{- define "wikipulse.probes" -}}
startupProbe:
  httpGet: {path: /livez, port: metrics}
  periodSeconds: 5
  failureThreshold: 36
livenessProbe:
  httpGet: {path: /livez, port: metrics}
  periodSeconds: 15
  timeoutSeconds: 5
  failureThreshold: 4
readinessProbe:
  httpGet: {path: /healthz, port: metrics}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}

{{- define "wikipulse.pod" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
{{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: false
securityContext:
{{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
