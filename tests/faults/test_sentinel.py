"""Fault injection on Redis with Sentinel: the primary lost, and the counts stay exact.

The pipeline of ``test_faults.py`` (replay server -> producer -> Kafka -> processor
replicas -> Redis, on a live-stamped stream with duplicates, canaries and malformed
records), with Redis as a primary, two replicas and three Sentinels monitoring it
(``services/local.sh`` with ``REDIS_REPLICAS=2``; the services find the primary through
``REDIS_SENTINELS``). Each scenario loses the primary while the stream plays, proves that
it did (its process is gone or stopped, the Sentinels name another primary), then checks
what a user relies on:

* every window that ended before the stream's tail equals an independent count;
* **no window was ever listed complete with other counts than that**, on any node: a
  watcher reads every node's index every 0.2 s throughout, the deposed primary's too;
* every invalid record is in the dead-letter topic exactly once;
* no processor restarted itself on a failure: each followed the failover
  (``wikipulse_redis_failovers_total``);

and reports how long no new window completed after the fault. The readers' scenario
also keeps the dashboard (its API, its live page in Chromium) and ``wikipulse top
--watch`` running across the failover: each shows windows completed after it, with the
right counts, without being restarted. ``artifacts/faults/sentinel-*.json`` hold what
each saw (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from devtools.observe import indexed_windows, metric, wait_for, window_counts
from devtools.replay import ReplayServer
from devtools.servers import LocalServers, Services, free_port
from devtools.truth import invalid, truth
from tests.faults.test_faults import ENV, RATE, Run, _dead_letters, _failures, _record
from tests.support.browser import launch
from tests.support.names import Names
from tests.support.pipeline import Pipeline, assert_index_matches_truth
from tests.support.streams import live_stream, with_noise

#: What the Sentinels need before they call a silent primary down (services/local.sh).
DOWN_AFTER_SECONDS = 5.0


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServers]:
    """Kafka, and Redis as a primary with two replicas and three Sentinels, for this
    suite alone: its scenarios kill and freeze the Redis nodes."""
    servers = LocalServers(tmp_path_factory.mktemp("sentinel-services"), redis_replicas=2)
    servers.start()
    try:
        yield servers
    finally:
        servers.stop()


@dataclass
class HaRun(Run):
    """A scenario in progress on Redis with Sentinel, and what it saw."""

    observed: dict[str, Any] = field(default_factory=dict)

    @property
    def ha(self) -> LocalServers:
        assert self.servers is not None
        return self.servers

    def primary(self) -> int:
        node = self.ha.primary()
        assert node is not None, "the Sentinels name no primary"
        return node


def failed_over(run: HaRun, old: int, timeout: float = 60) -> float:
    """Wait until the Sentinels name a primary other than ``old``; seconds it took."""
    began = time.monotonic()
    wait_for(lambda: run.ha.primary() not in (None, old), timeout, "a new primary", 0.2)
    run.observed["new_primary"] = run.ha.primary()
    return round(time.monotonic() - began, 1)


def role(port: int) -> str:
    try:
        return str(redis.Redis(port=port, socket_timeout=1).role()[0], "ascii")
    except redis.RedisError:
        return "down"


# ---------------------------------------------------------------- the faults


def kill_the_primary_for_good_and_a_replica(run: HaRun) -> None:
    """SIGKILL the primary (never restarted), then one of the three processors."""
    time.sleep(7)
    old = run.primary()
    run.observed["old_primary"] = old
    run.fault_at = time.time()
    run.ha.kill_redis_node(old)
    run.observed["seconds_to_new_primary"] = failed_over(run, old)
    time.sleep(2)
    run.processors[1].kill()
    run.observed["processor_killed"] = 1
    assert run.ha.redis_pid(old) is None, "the old primary came back"


def freeze_the_primary_for_20_s(run: HaRun) -> None:
    """SIGSTOP the primary for 20 s (to everyone else, a partition), then SIGCONT: the
    Sentinels fail over meanwhile, and the old primary must rejoin as a replica."""
    time.sleep(6)
    old = run.primary()
    pid = run.ha.redis_pid(old)
    assert pid is not None
    run.observed["old_primary"] = old
    run.fault_at = time.time()
    os.kill(pid, signal.SIGSTOP)
    try:
        run.observed["seconds_to_new_primary"] = failed_over(run, old, timeout=19)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        run.observed["frozen_state"] = state
        time.sleep(max(0.0, 20 - (time.time() - run.fault_at)))
    finally:
        os.kill(pid, signal.SIGCONT)
    port = run.ha.redis_ports[old - 1]
    wait_for(lambda: role(port) == "slave", 60, "the old primary to rejoin as a replica", 0.5)
    run.observed["old_primary_role_after"] = "replica"


def fail_over_during_a_recount(run: HaRun) -> None:
    """FLUSHALL (every node loses every window and all progress): the processors recount
    from Kafka; while they do, the primary is SIGKILLed, so the recount goes on on the
    new primary, which holds only part of it."""
    sentinel = _sentinel_client(run)
    wait_for(lambda: len(indexed_windows(sentinel, run.pipe.names.prefix)) >= 2, 60, "windows")
    old = run.primary()
    run.observed["old_primary"] = old
    sentinel.flushall()
    run.fault_at = time.time()

    def recounting() -> float:
        return sum(
            metric(p, "wikipulse_processor_recounting_partitions")
            for p in run.processors
            if p.alive
        )

    run.observed["recounting_partitions_at_kill"] = wait_for(recounting, 15, "a recount", 0.02)
    run.ha.kill_redis_node(old)
    run.observed["seconds_to_new_primary"] = failed_over(run, old)


def nothing_committed_was_lost(run: HaRun) -> None:
    """Every committed checkpoint was on a replica (WAIT) and the Sentinels promote the
    one with the most: with both replicas up, as here, the new primary lacks nothing
    Kafka committed, so nothing is recounted (losing the acknowledging replica with the
    primary is what the recount is for)."""
    survivors = [p for p in run.processors if p.alive]
    for name in ("wikipulse_processor_recounts_total", "wikipulse_processor_redis_went_back_total"):
        assert sum(metric(p, name) for p in survivors) == 0, name


def the_old_primary_stayed_dead(run: HaRun) -> None:
    assert run.ha.redis_pid(run.observed["old_primary"]) is None
    nothing_committed_was_lost(run)


def it_was_stopped_then_rejoined(run: HaRun) -> None:
    assert run.observed["frozen_state"] == "T", run.observed
    assert run.observed["old_primary_role_after"] == "replica"
    nothing_committed_was_lost(run)


def the_recount_was_interrupted(run: HaRun) -> None:
    assert run.observed["recounting_partitions_at_kill"] > 0
    recounts = sum(metric(p, "wikipulse_processor_recounts_total") for p in run.processors)
    assert recounts > 0, "nothing recounted"


@dataclass(frozen=True)
class HaScenario:
    name: str
    fault: str  # for the table in docs/reliability.md
    inject: Callable[[HaRun], None]
    proves: Callable[[HaRun], None]
    replicas: int = 2
    seconds: float = 30
    readers: bool = False  # the dashboard, the page and `wikipulse top --watch` too


SCENARIOS = [
    HaScenario(
        "sentinel-primary-sigkill",
        "Redis primary SIGKILLed for good (Sentinel fails over), then 1 of 3 processors; "
        "dashboard, live page and `wikipulse top --watch` across it",
        kill_the_primary_for_good_and_a_replica,
        the_old_primary_stayed_dead,
        replicas=3,
        seconds=30,
        readers=True,
    ),
    HaScenario(
        "sentinel-primary-frozen",
        "Redis primary SIGSTOPped 20 s (a partition), then continued: it rejoins as a replica",
        freeze_the_primary_for_20_s,
        it_was_stopped_then_rejoined,
        seconds=36,
    ),
    HaScenario(
        "sentinel-failover-during-recount",
        "FLUSHALL, and the primary SIGKILLed while the processors recount from Kafka",
        fail_over_during_a_recount,
        the_recount_was_interrupted,
        seconds=24,
    ),
]


def _sentinel_client(run: HaRun) -> redis.Redis:
    """The test's own way to the primary: redis-py's Sentinel client, independent of
    `wikipulse.redis_client` (the code under test), retrying through a failover."""
    sentinels = [(h, int(p)) for h, p in (a.split(":") for a in run.ha.sentinels.split(","))]
    retry = Retry(ExponentialBackoff(cap=2.0, base=0.2), 10)
    client: redis.Redis = Sentinel(sentinels, socket_timeout=3).master_for(
        "wikipulse", socket_timeout=3, retry=retry
    )
    return client


class Watcher:
    """Reads every Redis node's complete index every 0.2 s and checks each window listed
    there against the truth, once per node and per dataset (a node that resynchronised
    from a new primary, or restarted, is checked again): a window listed with other
    counts, anywhere, at any moment, is what this suite exists to catch."""

    def __init__(self, ports: list[int], prefix: str, expected: dict[int, Counter[str]]) -> None:
        self.ports, self.prefix, self.expected = ports, prefix, expected
        self.wrong: list[tuple[int, int, Counter[str]]] = []
        self.checked = 0
        self.first_seen: dict[int, float] = {}
        self._verified: dict[int, tuple[str, set[int]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for port in self.ports:
                with contextlib.suppress(redis.RedisError, OSError):
                    self._check(port)

    def _check(self, port: int) -> None:
        client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
        try:
            dataset = str(client.info("replication").get("master_replid", ""))
            verified = self._verified.get(port)
            if verified is None or verified[0] != dataset:
                verified = self._verified[port] = (dataset, set())
            for start in indexed_windows(client, self.prefix):
                self.first_seen.setdefault(start, time.time())
                if start not in self.expected or start in verified[1]:
                    continue
                counts = window_counts(client, self.prefix, start)
                self.checked += 1
                if counts != self.expected[start]:
                    self.wrong.append((port, start, counts))
                verified[1].add(start)
        finally:
            client.close()


class TopWatch:
    """``wikipulse top --watch`` as a user runs it, in a terminal (rich's Live redraws
    only there): the windows whose leaderboard it drew, from its output."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        terminal = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "140"}
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dashboard.cli", "top", "--watch", "--limit", "5"],
                env={**env, **terminal},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def windows(self) -> list[int]:
        text = self.log.read_text(errors="replace")
        return [int(s) for s in re.findall(r"window (\d{13})", text)]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def readers_followed_the_failover(
    run: HaRun,
    dashboard: str,
    top: TopWatch,
    page: Any,
    client: redis.Redis,
    expected: dict[int, Counter[str]],
    after: float,
) -> None:
    """The dashboard's API and page and the CLI show windows completed after the
    failover, exactly, and none of them was restarted."""
    later = sorted(w for w in expected if w / 1000 > after)
    assert later, "no window began after the failover"
    target = later[-1]
    answer = httpx.get(f"{dashboard}/api/windows/{target}?limit=1000", timeout=10)
    assert answer.status_code == 200, answer.text
    shown = {row["server_name"]: row["count"] for row in answer.json()["leaderboard"]}
    assert Counter(shown) == expected[target]
    # the page follows the newest window (the tail's by now): one after the failover,
    # its rows as Redis holds them
    page.wait_for_function(
        f"Number(document.querySelector('#leaderboard').dataset.window || 0) >= {later[0]}",
        timeout=30_000,
    )
    window = int(page.get_attribute("#leaderboard", "data-window"))
    names = page.locator("#leaderboard tbody tr td:nth-child(2)").all_text_contents()
    counts = page.locator("#leaderboard tbody tr td:nth-child(3)").all_text_contents()
    held = window_counts(client, run.pipe.names.prefix, window)
    assert names and {n: int(c) for n, c in zip(names, counts, strict=True)} == {
        n: held[n] for n in names
    }
    run.observed["page_showed_window_after_failover"] = window
    wait_for(lambda: any(w >= later[0] for w in top.windows()), 30, "`wikipulse top` to redraw")
    assert top.process.poll() is None, top.log.read_text()[-2000:]
    run.observed["top_redraws_after_failover"] = len([w for w in top.windows() if w >= later[0]])
    health = httpx.get(f"{dashboard}/healthz", timeout=10)
    assert health.status_code == 200, health.text


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_the_counts_stay_exact_when_redis_fails_over(
    scenario: HaScenario, ha: LocalServers, tmp_path: Path
) -> None:
    ha.start("redis")  # every node and Sentinel up, the primary with both replicas online
    services = Services(
        f"127.0.0.1:{ha.kafka_port}", ha.redis_url(), "local", "local", sentinels=ha.sentinels
    )
    names = Names(f"{scenario.name}-{time.monotonic_ns() % 10**8}")
    with ReplayServer() as replay:
        pipe = Pipeline(services, names, tmp_path, sse_url=replay.url, overrides=ENV)
        run = HaRun(pipe, replay, ha)
        client = _sentinel_client(run)
        try:
            run_scenario(scenario, run, client, tmp_path)
        finally:
            pipe.stop_all()
            client.close()


def run_scenario(scenario: HaScenario, run: HaRun, client: redis.Redis, tmp_path: Path) -> None:
    pipe, replay, ha, names = run.pipe, run.replay, run.ha, run.pipe.names
    stop_tail = threading.Event()
    top: TopWatch | None = None
    with contextlib.ExitStack() as stack:
        try:
            run.start_producer()
            wait_for(lambda: replay.connections, 30, "the producer to connect")
            for replica in range(scenario.replicas):
                run.start_processor(replica)
            page: Any = None
            dashboard = ""
            if scenario.readers:
                port = free_port()
                dashboard = f"http://127.0.0.1:{port}"
                dashboard_process = pipe.dashboard(DASHBOARD_PORT=str(port))
                top = TopWatch(pipe.env(), tmp_path / "top.log")
                wait_for(lambda: _answers(f"{dashboard}/livez"), 30, "the dashboard")
                from playwright.sync_api import sync_playwright

                playwright = stack.enter_context(sync_playwright())
                browser = launch(playwright)
                stack.callback(browser.close)
                page = browser.new_page()
                page.goto(dashboard)

            start = time.time()
            count = int(scenario.seconds * RATE)
            payloads = with_noise(live_stream(count, RATE, start), start, RATE)
            window_ms = pipe.window_ms
            last_event_ms = (start + (count - 1) / RATE) * 1000
            # every window that ends before the stream's last event: no tail in it
            expected = {
                w: c
                for w, c in truth(payloads, window_ms).items()
                if w + window_ms <= last_event_ms
            }
            watcher = stack.enter_context(Watcher(ha.redis_ports, names.prefix, expected))
            player = threading.Thread(target=replay.play, args=(payloads, RATE, False), daemon=True)
            player.start()
            scenario.inject(run)
            player.join()
            stream_end = time.time()
            threading.Thread(
                target=replay.play,
                args=(live_stream(4_000, 20, stream_end, first=count), 20, False),
                kwargs={"stop": stop_tail},
                daemon=True,
            ).start()

            assert_index_matches_truth(pipe, client, expected, timeout=150)
            exact_after = time.time() - stream_end
            assert run.fault_at is not None
            if scenario.readers:
                assert dashboard_process.alive, dashboard_process.output()[-3000:]
                assert top is not None
                readers_followed_the_failover(
                    run, dashboard, top, page, client, expected, run.fault_at + DOWN_AFTER_SECONDS
                )
            scenario.proves(run)
            time.sleep(1)  # one more round of the watcher over every node
        finally:
            stop_tail.set()
            if top is not None:
                top.stop()
        assert not watcher.wrong, f"windows listed with wrong counts: {watcher.wrong}"
        assert watcher.checked >= len(expected), (watcher.checked, len(expected))

    dead = _dead_letters(pipe.services.kafka, names.topic, invalid(payloads))
    survivors = [p for p in run.processors if p.alive]
    killed = f"processor-{run.observed.get('processor_killed')}"
    for name, service in run.services().items():
        assert service.alive or name == killed, f"{name} is down\n{service.output()[-3000:]}"
    restarts = {f"processor-{i}": _failures(p) for i, p in enumerate(run.processors)}
    assert not any(restarts.values()), restarts
    followed = [metric(p, "wikipulse_redis_failovers_total") for p in survivors]
    assert all(f >= 1 for f in followed), f"a processor did not follow the failover: {followed}"
    late = sum(metric(p, "wikipulse_processor_records_total", 'verdict="late"') for p in survivors)
    assert late == 0
    appeared = sorted(t for t in watcher.first_seen.values() if t >= run.fault_at)
    gaps = [b - a for a, b in zip([run.fault_at, *appeared], appeared, strict=False)]

    def total(name: str) -> float:
        return sum(metric(p, name) for p in survivors)

    _record(
        scenario,  # type: ignore[arg-type]
        events=sum(sum(c.values()) for c in truth(payloads, window_ms).values()),
        payloads=len(payloads),
        windows_checked=len(expected),
        windows_exact=len(expected),  # assert_index_matches_truth compared each
        window_listings_checked_on_every_node=watcher.checked,
        windows_listed_wrong=len(watcher.wrong),
        dead_letters=len(dead),
        seconds_to_exact=round(exact_after, 1),
        seconds_to_exact_from="stream end",
        seconds_without_new_windows=round(max(gaps, default=0.0), 1),
        window_seconds=window_ms / 1000,
        recounts=total("wikipulse_processor_recounts_total"),
        redis_went_back=total("wikipulse_processor_redis_went_back_total"),
        backpressure=total("wikipulse_processor_redis_backpressure_total"),
        processor_restarts=0,
        **run.observed,
    )


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
