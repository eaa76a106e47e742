"""Redis over TLS with an ACL user, Kafka with SASL_SSL: the pipeline runs, nothing leaks."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from devtools.observe import wait_for
from devtools.servers import LocalServers, free_port
from devtools.truth import truth
from tests.support.certs import make_certs
from tests.support.pipeline import Pipeline, assert_index_matches_truth
from tests.support.streams import RECORDED, live_stream
from wikipulse.store.keys import KeyLayout
from wikipulse.store.window_store import WindowStore

PASSWORD = "tls-s3cret-pw"


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[str]:
    """redis-server speaking only TLS, with the default user off and one ACL user."""
    certs = tmp_path / "certs"
    made = make_certs(certs)
    (certs / "users.acl").write_text(f"user default off\nuser app on >{PASSWORD} ~* &* +@all\n")
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            str(made.cert),
            "--tls-key-file",
            str(made.key),
            "--tls-ca-cert-file",
            str(made.ca),
            "--tls-auth-clients",
            "no",
            "--aclfile",
            str(certs / "users.acl"),
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"rediss://app:{PASSWORD}@127.0.0.1:{port}/0?ssl_ca_certs={made.ca}"
    wait_for(lambda: _pings(url), 10, "redis with TLS")
    yield url
    server.terminate()
    server.wait(10)


def _pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url).ping())
    except redis.RedisError:
        return False


def test_windows_reach_redis_over_tls_with_a_password_that_never_shows(
    services, names, replay, tmp_path, tls_redis
):
    plain = tls_redis.replace("rediss://", "redis://").split("?")[0]
    with pytest.raises(redis.RedisError):
        redis.Redis.from_url(plain, socket_timeout=2).ping()  # TLS only
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(tls_redis.replace(PASSWORD, "wrong")).ping()

    own = dataclasses.replace(services, redis_url=tls_redis)
    pipeline = Pipeline(own, names, tmp_path, sse_url=replay.url)
    try:
        producer = pipeline.producer()
        wait_for(lambda: replay.connections, 30, "the producer to connect")
        processor = pipeline.processor()
        replay.play(live_stream(len(RECORDED), 100.0, time.time()), 100.0, False)
        expected = truth(replay.log, pipeline.window_ms)
        client = redis.Redis.from_url(tls_redis)
        assert_index_matches_truth(pipeline, client, expected)

        port = free_port()
        dashboard = pipeline.dashboard(DASHBOARD_PORT=str(port))
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200, 30, "the dashboard")
        windows = httpx.get(f"http://127.0.0.1:{port}/api/windows").json()
        leading = set(WindowStore(client, KeyLayout(pipeline.names.prefix)).partial_starts(5))
        assert {w["start"] for w in windows} == set(expected) - leading  # the stream's first
        for service in (producer, processor, dashboard):
            assert PASSWORD not in service.output(), service.module
        assert "app:***@" in processor.output()  # the URL is logged, redacted
    finally:
        pipeline.stop_all()


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


KAFKA_PASSWORD = "sasl-s3cret-pw"


@pytest.fixture
def sasl_ssl_kafka(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A broker whose client listener takes only SASL_SSL with the PLAIN mechanism.

    The generated plaintext listener stays for the readiness probe and the broker's own
    traffic; the services under test only get the SASL_SSL address.
    """
    made = make_certs(tmp_path / "kafka-certs")
    keystore = tmp_path / "kafka-certs" / "server.pem"
    keystore.write_text(made.key.read_text() + made.cert.read_text())
    servers = LocalServers(tmp_path / "kafka-sasl")
    secure = free_port()
    jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_wikipulse="{KAFKA_PASSWORD}";'
    )
    extra = tmp_path / "sasl_ssl.properties"
    extra.write_text(
        f"listeners=PLAINTEXT://127.0.0.1:{servers.kafka_port},"
        f"SASL_SSL://127.0.0.1:{secure},CONTROLLER://127.0.0.1:{servers.controller_port}\n"
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{servers.kafka_port},"
        f"SASL_SSL://127.0.0.1:{secure}\n"
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
        "SASL_SSL:SASL_SSL\n"
        "sasl.enabled.mechanisms=PLAIN\n"
        f"listener.name.sasl_ssl.plain.sasl.jaas.config={jaas}\n"
        "ssl.keystore.type=PEM\n"
        f"ssl.keystore.location={keystore}\n"
    )
    servers.extra_env["KAFKA_EXTRA_PROPERTIES"] = str(extra)
    servers.start("kafka")
    try:
        yield f"127.0.0.1:{secure}", made.ca
    finally:
        servers.stop("kafka")


def test_the_pipeline_runs_on_kafka_with_sasl_ssl_and_the_password_never_shows(
    services, names, replay, tmp_path, sasl_ssl_kafka
):
    address, ca = sasl_ssl_kafka
    secure = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": "wikipulse",
        "KAFKA_SASL_PASSWORD": KAFKA_PASSWORD,
        "KAFKA_SSL_CA_LOCATION": str(ca),
        "KAFKA_STARTUP_TIMEOUT_SECONDS": "20",
    }
    own = dataclasses.replace(services, kafka=address)
    pipeline = Pipeline(own, names, tmp_path, sse_url=replay.url, overrides=secure)
    try:
        refused = pipeline.processor(9, KAFKA_SASL_PASSWORD="wrong-" + KAFKA_PASSWORD)
        plain = pipeline.producer(
            "producer-plaintext", KAFKA_SECURITY_PROTOCOL="PLAINTEXT", SSE_URL="http://x:1/"
        )
        producer = pipeline.producer()
        wait_for(lambda: replay.connections, 60, lambda: f"the producer\n{pipeline.logs()}")
        processor = pipeline.processor()
        replay.play(live_stream(len(RECORDED), 100.0, time.time()), 100.0, False)
        expected = truth(replay.log, pipeline.window_ms)
        client = redis.Redis.from_url(services.redis_url)
        assert_index_matches_truth(pipeline, client, expected)

        # a wrong password and a plaintext client are refused with one line each
        for service in (refused, plain):
            assert service.process is not None
            assert service.process.wait(60) != 0, service.module
            last = service.output().strip().splitlines()[-1]
            assert f"Kafka at {address} is not usable" in last, last
        assert "Authentication failed" in refused.output().strip().splitlines()[-1]
        for service in (producer, processor, refused, plain):
            assert KAFKA_PASSWORD not in service.output(), service.module
    finally:
        pipeline.stop_all()
