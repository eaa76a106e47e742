"""Redis with TLS and an ACL user: the processor writes, the dashboard reads, nothing leaks."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis

from tests.certs import make_certs
from tests.conftest import DATA
from tests.pipeline import Pipeline, indexed_windows, truth, wait_for, window_counts
from tests.services import free_port
from wikipulse.replay import load_events, restamp

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
        recorded = load_events(DATA / "recentchange-2026-06-20.sse")
        start = time.time()
        replay.play(
            [
                restamp(e, datetime.fromtimestamp(start + i / 100, UTC), 0)
                for i, e in enumerate(recorded)
            ],
            100.0,
            False,
        )
        expected = truth(replay.log, pipeline.window_ms)
        client = redis.Redis.from_url(tls_redis)
        wait_for(
            lambda: set(expected) <= set(indexed_windows(client, names.prefix)),
            90,
            lambda: f"windows over TLS\n{pipeline.logs()}",
        )
        for window, counts in expected.items():
            assert window_counts(client, names.prefix, window) == counts

        port = free_port()
        dashboard = pipeline.dashboard(DASHBOARD_PORT=str(port))
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200, 30, "the dashboard")
        windows = httpx.get(f"http://127.0.0.1:{port}/api/windows").json()
        assert {w["start"] for w in windows} == set(expected)
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
