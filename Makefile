# WikiPulse — one command to run, one to test. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv run run-replay services services-down services-status services-clean \
        test test-fast test-faults test-cluster test-docker test-deploy lint format docs bench bench-cluster clean

# The Docker tier: the Compose end-to-end test, the pipeline tests and one fault
# scenario against testcontainers (tests/docker/engine.sh provides engine and images).
DOCKER_TESTS := tests/docker tests/integration/test_pipeline.py \
        'tests/faults/test_faults.py::test_the_pipeline_stays_exact_through[replica-sigkill]'

help:
	@echo "make run          services + producer + processor + dashboard (live Wikimedia stream)"
	@echo "make run-replay   the same, fed by the bundled recording (offline)"
	@echo "make test         every test, against real Kafka and Redis (what CI runs)"
	@echo "make test-fast    unit and contract tiers: no Kafka, a private Redis, under a minute"
	@echo "make test-faults  only the fault-injection suite (docs/reliability.md)"
	@echo "make test-cluster brokers lost on a three-broker Kafka cluster, the Redis primary under Sentinel"
	@echo "make test-docker  docker compose up for real, and the testcontainers tier"
	@echo "make test-deploy  the Helm chart and alert rules: helm lint/template, schemas, promtool"
	@echo "make lint         ruff + mypy"
	@echo "make docs         regenerate docs/configuration.md (and the chart's list) from the settings classes"
	@echo "make services     start Kafka and Redis only; make services-down stops them"
	@echo "                  (KAFKA_BROKERS=3 make services / make run: a three-broker cluster;"
	@echo "                   REDIS_REPLICAS=2: Redis with two replicas and three Sentinels)"

$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required, found " + sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

venv: $(STAMP)

services: $(STAMP)
	@PYTHON=$(PY) services/local.sh up

services-down:
	@services/local.sh down

services-status:
	@services/local.sh status

services-clean:
	@services/local.sh clean

run: services
	@PYTHON=$(PY) scripts/run.sh

run-replay: services
	@PYTHON=$(PY) REPLAY=1 scripts/run.sh

test: $(STAMP)
	@PYTHON=$(PY) services/local.sh deps
	@scripts/ensure-chromium.sh
	@scripts/ensure-deploy-tools.sh
	WIKIPULSE_REQUIRE_DEPLOY_TOOLS=1 $(PY) -m pytest $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-docker

test-docker: $(STAMP)
	@PYTHON=$(PY) services/local.sh deps
	@PYTHON=$(PY) tests/docker/engine.sh run \
	  env WIKIPULSE_TEST_SERVICES=docker $(PY) -m pytest $(DOCKER_TESTS) $(PYTEST_ARGS)

# The deploy tier alone: deploy/helm/wikipulse and deploy/prometheus, checked by a real
# helm (built from the Go module proxy), kubernetes-validate and promtool; no cluster.
test-deploy: $(STAMP)
	@scripts/ensure-deploy-tools.sh
	WIKIPULSE_REQUIRE_DEPLOY_TOOLS=1 $(PY) -m pytest tests/deploy $(PYTEST_ARGS)

test-faults: $(STAMP)
	@PYTHON=$(PY) services/local.sh deps
	WIKIPULSE_CLUSTER_ALL=1 $(PY) -m pytest -m faults $(PYTEST_ARGS)

# The multi-machine scenarios: brokers lost on a three-broker KRaft cluster (explicit
# settings, and nothing but the bootstrap list), and the Redis primary lost under
# Sentinel. `make test`, and so CI, runs every Sentinel scenario and the broker SIGKILL
# with the defaults; all of them take 10-16 min here.
test-cluster: $(STAMP)
	@PYTHON=$(PY) services/local.sh deps
	@scripts/ensure-chromium.sh
	WIKIPULSE_CLUSTER_ALL=1 $(PY) -m pytest tests/faults/test_cluster.py tests/faults/test_sentinel.py \
	  tests/integration/test_redis_ha.py $(PYTEST_ARGS)

# The inner loop: pure code, and the Redis contract against a Redis of its own.
test-fast: $(STAMP)
	$(PY) -m pytest -m "(unit or contract) and not integration" tests/unit tests/contract $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

docs: $(STAMP)
	$(PY) -m devtools.configdoc > docs/configuration.md
	$(PY) -m devtools.configdoc --chart > deploy/helm/wikipulse/files/settings.yaml

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache state artifacts

bench: $(STAMP)
	@PYTHON=$(PY) services/local.sh deps
	$(PY) -m benchmarks $(BENCH_ARGS)

# one broker against a three-broker cluster: catch-up, producer and live rate (issue #26)
bench-cluster: $(STAMP)
	@PYTHON=$(PY) services/local.sh deps
	$(PY) -m benchmarks.cluster $(BENCH_ARGS)
