"""Fault injection: the whole pipeline, one fault at a time, and the counts stay exact.

Each scenario runs replay server -> producer -> Kafka -> processor replica(s) -> Redis on
a live-stamped stream that carries duplicates, canaries and malformed records, injects
one fault while the stream plays, and then checks what a user relies on:

* every finished window in Redis equals an independent count (``devtools.truth.truth``);
* every invalid record is in the dead-letter topic, with a reason;
* no service stayed down;
* memory stayed bounded (peak RSS growth of each service process).

The two scenarios that stop Kafka or Redis own theirs (``services/local.sh`` on free
ports); the others run on the session's servers, whichever tier provides them (so
``WIKIPULSE_TEST_SERVICES=docker`` runs them against containers). A live stream never
stops, so after the scenario a thin "tail" of events keeps flowing while the checks run:
the windows it touches are not checked. What
each scenario observed is written to ``artifacts/faults/<scenario>.json``, which
``docs/reliability.md`` tabulates.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from devtools.faults import Connection, Fault
from devtools.observe import indexed_windows, metric, read_topic, wait_for
from devtools.processes import Service, usage
from devtools.replay import ReplayServer
from devtools.servers import LocalServers, Services, free_port, process_running
from devtools.truth import invalid, judge, truth, truth_breakdowns
from tests.support.names import Names
from tests.support.paths import ARTIFACTS
from tests.support.pipeline import Pipeline, assert_index_matches_truth
from tests.support.streams import RECORDED, iso, live_stream, play_async, with_noise
from wikipulse.events import HEARTBEAT_KEY, Header

RATE = 100.0  # events per second, about the live stream's rate
MAX_EVENT_BYTES = 1_000_000  # the producer's default: larger events are dead-lettered empty
MEMORY_BOUND_MIB = 150  # peak RSS growth allowed per service process during a scenario

# Short windows keep the suite fast. A stalled connection looks like a quiet stream
# until the read timeout, so heartbeats may run at most GRACE past the newest event.
ENV = {
    "WINDOW_SECONDS": "3",
    "GRACE_SECONDS": "2",
    "HEARTBEAT_MAX_AHEAD_SECONDS": "2",
    "READ_TIMEOUT_SECONDS": "3",
    "MAX_IN_FLIGHT": "500",
    "SESSION_TIMEOUT_SECONDS": "6",
}
SESSION_TIMEOUT = 6.0


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServers]:
    """Kafka and Redis for this suite alone: scenarios stop and restart them."""
    servers = LocalServers(tmp_path_factory.mktemp("fault-services"))
    servers.start()
    try:
        yield servers
    finally:
        servers.stop()


@dataclass
class Run:
    """One scenario in progress: the pipeline, its servers and what was observed."""

    pipe: Pipeline
    replay: ReplayServer
    servers: LocalServers | None  # only for the scenarios that stop a server
    processors: list[Service] = field(default_factory=list)
    producer: Service | None = None
    rss: dict[str, list[int]] = field(default_factory=dict)  # per process, in KiB
    fault_at: float | None = None  # when the fault began (wall time)
    observed: dict[str, object] = field(default_factory=dict)  # what the injector saw

    def start_producer(self) -> None:
        self.producer = self.pipe.producer(METRICS_PORT=str(free_port()))

    def start_processor(self, replica: int) -> None:
        service = self.pipe.processor(replica, METRICS_PORT=str(free_port()))
        if replica < len(self.processors):
            self.processors[replica] = service
        else:
            self.processors.append(service)

    def services(self) -> dict[str, Service]:
        current = {f"processor-{i}": s for i, s in enumerate(self.processors)}
        return {"producer": self.producer, **current} if self.producer else current

    def sample_memory(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            for name, service in self.services().items():
                if service.alive and service.process is not None:
                    pid = service.process.pid
                    with contextlib.suppress(OSError, AssertionError):  # it just exited
                        self.rss.setdefault(f"{name} (pid {pid})", []).append(usage(pid).rss_kib)


# ---------------------------------------------------------------- the faults


def kill_the_producer(run: Run) -> None:
    time.sleep(4)
    assert run.producer is not None
    run.producer.kill()
    time.sleep(2)
    run.start_producer()


def kill_one_of_three_replicas(run: Run) -> None:
    time.sleep(5)
    run.processors[1].kill()
    time.sleep(3)
    run.start_processor(1)


def kill_all_replicas(run: Run) -> None:
    time.sleep(5)
    for processor in run.processors:
        processor.kill()
    time.sleep(3)
    for replica in range(len(run.processors)):
        run.start_processor(replica)


def freeze_a_replica_past_its_session(run: Run) -> None:
    """SIGSTOP one of three replicas for longer than the session timeout: the group
    gives its partitions to the others, and when it wakes it finds them lost, with a
    checkpoint of theirs still open (dead letters included)."""
    victim = run.processors[1]

    def counted() -> bool:
        try:
            return metric(victim, "wikipulse_processor_closed_until_seconds") > 0
        except httpx.HTTPError:  # its /metrics is not up yet
            return False

    # it holds partitions and has counted into Redis: a checkpoint to leave open
    wait_for(counted, 60, "the replica to count")
    time.sleep(0.3)
    frozen = victim.process
    assert frozen is not None
    client = redis.Redis.from_url(run.pipe.services.redis_url)
    prefix = run.pipe.names.prefix
    run.fault_at = time.time()
    os.kill(frozen.pid, signal.SIGSTOP)
    time.sleep(1)
    state = Path(f"/proc/{frozen.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    before = len(indexed_windows(client, prefix))
    # frozen past its session for sure; then held until the others have completed two
    # windows, which they can only do once the group has given them its partitions (a
    # window completes when every partition has passed it). On a loaded machine the
    # rebalance and the takeover's recount may take longer than a few seconds: the
    # freeze waits for them, up to a bound, rather than guessing how long they take.
    time.sleep(SESSION_TIMEOUT + 4)
    deadline = time.time() + 40
    while len(indexed_windows(client, prefix)) - before < 2 and time.time() < deadline:
        time.sleep(0.5)
    run.observed["frozen_state"] = state
    run.observed["frozen_for_seconds"] = round(time.time() - run.fault_at, 1)
    run.observed["windows_completed_while_frozen"] = len(indexed_windows(client, prefix)) - before
    os.kill(frozen.pid, signal.SIGCONT)


def the_others_took_the_frozen_replica_s_partitions(run: Run) -> None:
    """It was stopped, and windows kept completing meanwhile: every partition was
    counted by someone, so its partitions had moved to the other replicas."""
    assert run.observed["frozen_state"] == "T", run.observed
    assert int(str(run.observed["windows_completed_while_frozen"])) >= 2, run.observed


def stop_redis_for_20_s(run: Run) -> None:
    time.sleep(4)
    assert run.servers is not None
    run.servers.stop("redis")
    assert _refused(run.servers.redis_port), "redis still answers after it was stopped"
    time.sleep(20)
    assert _refused(run.servers.redis_port), "redis came back before the 20 s were up"
    run.servers.start("redis")


def stop_kafka_for_20_s(run: Run) -> None:
    time.sleep(4)
    assert run.servers is not None
    run.servers.stop("kafka")
    assert _refused(run.servers.kafka_port), "the broker still answers after it was stopped"
    time.sleep(20)
    assert _refused(run.servers.kafka_port), "the broker came back before the 20 s were up"
    run.servers.start("kafka")


def _redis_pid(servers: LocalServers) -> int:
    return int((servers.directory / "redis" / "redis.pid").read_text())


def _kill_redis(servers: LocalServers) -> None:
    """SIGKILL: no shutdown save, nothing flushed that was not flushed already."""
    pid = _redis_pid(servers)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: _refused(servers.redis_port) and not process_running(pid), 10, "redis to die")
    # its pid file stays behind: services/local.sh would take a reused pid for it
    (servers.directory / "redis" / "redis.pid").unlink()


def kill_redis(run: Run) -> None:
    time.sleep(4)
    assert run.servers is not None
    run.fault_at = time.time()
    _kill_redis(run.servers)
    time.sleep(3)
    run.servers.start("redis")


def restore_redis_from_an_older_snapshot(run: Run) -> None:
    """A snapshot taken, then 6 s of acknowledged writes lost: what a restore from a
    backup, a failover to a lagging replica or a host crash with a lazier fsync does."""
    _windows_published(run, 1)
    servers = run.servers
    assert servers is not None
    data = servers.directory / "redis" / "appendonlydir"
    kept = servers.directory / "redis-snapshot"
    client = redis.Redis(port=servers.redis_port)
    client.execute_command("BGREWRITEAOF")
    for _ in range(20):  # copied only once Redis removed the old files in the background
        time.sleep(0.5)
        if client.info("persistence")["aof_rewrite_in_progress"]:
            continue
        try:
            shutil.copytree(data, kept)
            break
        except (FileNotFoundError, shutil.Error):  # a history file went while copied
            shutil.rmtree(kept, ignore_errors=True)
    assert kept.exists(), "no snapshot of redis could be copied"
    time.sleep(6)
    run.fault_at = time.time()
    _kill_redis(servers)
    shutil.rmtree(data)
    shutil.copytree(kept, data)
    servers.start("redis")


def _windows_published(run: Run, count: int) -> None:
    """Wait until Redis holds ``count`` complete windows: something to lose."""
    assert run.servers is not None
    client = redis.Redis(port=run.servers.redis_port)
    prefix = run.pipe.names.prefix
    wait_for(lambda: len(indexed_windows(client, prefix)) >= count, 60, "windows to lose")


def flush_redis(run: Run) -> None:
    """FLUSHALL: a lost volume, an operator's mistake."""
    _windows_published(run, 2)
    time.sleep(1)
    assert run.servers is not None
    run.fault_at = time.time()
    redis.Redis(port=run.servers.redis_port).flushall()


def _refused(port: int) -> bool:
    """Whether a connection to ``port`` on this machine is refused (nothing listens)."""
    try:
        socket.create_connection(("127.0.0.1", port), 2).close()
    except ConnectionRefusedError:
        return True
    except OSError:  # reset or timed out: a server still dying, not yet gone
        return False
    return False


# ---------------------------------------------------------------- proofs that a fault happened


def _plan_served(run: Run, plan: tuple[Fault, ...]) -> list[Connection]:
    """The first connections got the planned faults, in order, with the planned statuses."""
    assert not run.replay.plan, f"fault plan not consumed: {run.replay.plan}"
    served = run.replay.connections[: len(plan)]
    assert [c.fault for c in served] == list(plan)
    assert [c.status for c in served] == [f.code if f.kind == "status" else 200 for f in plan]
    assert all(c.fault_at is not None for c in served), "a planned fault never began"
    return served


def the_stall_outlasted_the_read_timeout(run: Run) -> None:
    (stalled,) = _plan_served(run, SSE_STALL)
    after = run.replay.connections[1]
    assert stalled.fault_at is not None
    waited = after.at - stalled.fault_at
    read_timeout = float(ENV["READ_TIMEOUT_SECONDS"])
    # the producer gave up on the silent connection by its read timeout, before the
    # server closed it (the stall lasts 8 s)
    assert read_timeout <= waited < SSE_STALL[0].seconds, waited


def the_reconnect_honoured_retry_after(run: Run) -> None:
    refused = _plan_served(run, SSE_429)[1]
    after = run.replay.connections[2]
    assert SSE_429[1].retry_after is not None
    assert after.at - refused.at >= SSE_429[1].retry_after, after.at - refused.at


def redis_backpressure_was_felt(run: Run) -> None:
    felt = sum(metric(p, "wikipulse_processor_redis_backpressure_total") for p in run.processors)
    assert felt > 0, "the sink never waited for Redis"


def redis_lost_nothing(run: Run) -> None:
    """With an fsync per write (services/local.sh), a SIGKILL loses no write: nothing
    needs recounting."""
    recounts = sum(metric(p, "wikipulse_processor_recounts_total") for p in run.processors)
    assert recounts == 0, f"{recounts} partitions recounted after a SIGKILL"


def redis_loss_was_recounted(run: Run) -> None:
    recounts = sum(metric(p, "wikipulse_processor_recounts_total") for p in run.processors)
    assert recounts > 0, "no partition was recounted: did Redis lose anything?"
    recounting = sum(metric(p, "wikipulse_processor_recounting_partitions") for p in run.processors)
    assert recounting == 0, "still recounting"


def the_connection_stayed_open_on_keepalives(run: Run) -> None:
    assert len(run.replay.connections) == 1, [c.status for c in run.replay.connections]


def a_reconnect_found_the_stream_quiet(run: Run) -> None:
    connections = run.replay.connections
    assert len(connections) >= 2 and all(c.status == 200 for c in connections)
    assert connections[1].last_event_id is not None


_DELETE = object()  # a field value meaning "leave this field out"


def hostile_events(when: float) -> list[bytes]:
    """Bad input of every kind the issue names, stamped live at ``when``."""
    template = orjson.loads(RECORDED[0])
    template["meta"]["dt"] = iso(when)
    serial = iter(range(1_000_000))

    def event(**changes: object) -> bytes:
        obj = json.loads(json.dumps(template))
        obj["meta"]["id"] = f"hostile-{when}-{next(serial)}"
        for name, value in changes.items():
            if value is _DELETE:
                obj.pop(name, None)
            else:
                obj[name] = value
        return json.dumps(obj).encode()

    same_id = event(server_name="repeat.example.org")

    def long_id(seed: int) -> bytes:
        """An event whose meta.id is 600 KB of incompressible text: two of them in one
        window outgrew a changelog record (1 MB) when windows kept their ids."""
        obj = json.loads(event(server_name="long-ids.example.org"))
        obj["meta"]["id"] = base64.b64encode(random.Random(seed).randbytes(450_000)).decode()
        return json.dumps(obj).encode()

    return [
        b'{"server_name": "\xc3\x28", "bad utf-8": "\xff\xfe"}',
        b"\xff\xfe\xfd not utf-8 at all",
        b"x" * (1 << 20),  # a 1 MiB data line: over the producer's limit
        event(comment="y" * 900_000),  # a 900 KB event still counts
        b"[" * 100_000 + b"]" * 100_000,  # deeply nested arrays
        b'{"a":' * 5_000 + b"1" + b"}" * 5_000,  # deeply nested objects
        event(server_name=42),
        event(server_name=None),
        event(server_name=_DELETE),
        event(server_name=["en.wikipedia.org"]),
        event(meta="not an object", timestamp="soon"),
        event(meta={"dt": 1_700_000_000, "id": "wrong-type-dt"}),
        event(meta={"dt": "yesterday", "id": "not-iso-dt"}),
        event(server_name="evil\u0000.org"),
        event(server_name="tab\tbed.org"),
        event(server_name="<script>alert(1)</script>.org"),  # odd, but a name: counts
        event(server_name="<b>bold</b> &amp; wiki"),
        *[same_id] * 50,  # the same meta.id fifty times counts once
        long_id(1),
        long_id(2),
        long_id(1),  # two long ids, one of them twice: counts 2
    ]


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: str  # for the table in docs/reliability.md
    inject: Callable[[Run], None] | None = None
    replicas: int = 1
    seconds: float = 12.0
    plan: tuple[Fault, ...] = ()  # what the SSE server does to successive connections
    hostile: bool = False
    stops_servers: bool = False  # needs Kafka and Redis of its own
    proves: Callable[[Run], None] | None = None  # checks that the fault did happen
    keepalive: float = 0.0  # the SSE server's ':' comment period when idle (0: none)
    ends: bool = False  # the stream ends: no tail follows, every window is checked


SSE_STALL = (Fault("stall", after=400, seconds=8),)
SSE_429 = (Fault("disconnect", after=300), Fault("status", code=429, retry_after=3))


SCENARIOS = [
    Scenario("producer-sigkill", "producer SIGKILLed, restarted 2 s later", kill_the_producer),
    Scenario(
        "replica-sigkill",
        "1 of 3 processor replicas SIGKILLed, restarted 3 s later",
        kill_one_of_three_replicas,
        replicas=3,
        seconds=14,
    ),
    Scenario(
        "all-replicas-sigkill",
        "all 3 replicas SIGKILLed, restarted 3 s later",
        kill_all_replicas,
        replicas=3,
        seconds=14,
    ),
    Scenario(
        "replica-frozen",
        "1 of 3 replicas frozen (SIGSTOP) past its session timeout, then woken",
        freeze_a_replica_past_its_session,
        replicas=3,
        seconds=30,
        proves=the_others_took_the_frozen_replica_s_partitions,
    ),
    Scenario(
        "redis-outage",
        "Redis stopped for 20 s",
        stop_redis_for_20_s,
        seconds=30,
        stops_servers=True,
        proves=redis_backpressure_was_felt,
    ),
    Scenario(
        "redis-sigkill",
        "Redis SIGKILLed, restarted on its own data 3 s later",
        kill_redis,
        replicas=2,
        seconds=20,
        stops_servers=True,
        proves=redis_lost_nothing,
    ),
    Scenario(
        "redis-older-snapshot",
        "Redis restarted from a snapshot 6 s old (acknowledged writes lost)",
        restore_redis_from_an_older_snapshot,
        replicas=2,
        seconds=24,
        stops_servers=True,
        proves=redis_loss_was_recounted,
    ),
    Scenario(
        "redis-flushall",
        "FLUSHALL mid-stream (a lost volume)",
        flush_redis,
        replicas=2,
        seconds=20,
        stops_servers=True,
        proves=redis_loss_was_recounted,
    ),
    Scenario(
        "kafka-outage",
        "Kafka broker stopped for 20 s",
        stop_kafka_for_20_s,
        seconds=30,
        stops_servers=True,
    ),
    Scenario(
        "sse-disconnect",
        "SSE server closes the connection every 300 events",
        plan=(Fault("disconnect", after=300),) * 3,
    ),
    Scenario(
        "sse-stall",
        "SSE server goes silent for 8 s (read timeout 3 s)",
        plan=SSE_STALL,
        proves=the_stall_outlasted_the_read_timeout,
    ),
    Scenario(
        "sse-500",
        "SSE server drops the stream, then answers 500 twice",
        plan=(Fault("disconnect", after=300), Fault("status", code=500), Fault("status", code=500)),
    ),
    Scenario(
        "sse-429",
        "SSE server drops the stream, then answers 429 with Retry-After: 3",
        plan=SSE_429,
        proves=the_reconnect_honoured_retry_after,
    ),
    Scenario(
        "sse-truncated",
        "SSE server sends half a frame and closes, three times",
        plan=(Fault("truncate", after=250),) * 3,
    ),
    Scenario(
        "hostile-input",
        "invalid UTF-8, a 1 MiB line, nested JSON, wrong types, control characters, "
        "HTML names, one meta.id 50 times, 600 KB meta.ids",
        hostile=True,
    ),
    Scenario(
        "stream-ends-keepalive",
        "the stream ends; the server sends ':' keep-alives every second",
        keepalive=1.0,
        ends=True,
        proves=the_connection_stayed_open_on_keepalives,
    ),
    Scenario(
        "stream-ends-silent",
        "the stream ends; the server sends nothing, as Wikimedia (probed by reconnecting)",
        ends=True,
        proves=a_reconnect_found_the_stream_quiet,
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_the_pipeline_stays_exact_through(
    scenario: Scenario, services: Services, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    own: LocalServers | None = None
    if scenario.stops_servers:
        own = request.getfixturevalue("own")
        own.start()  # a no-op unless a scenario before this one failed with a server down
        services = Services(
            f"127.0.0.1:{own.kafka_port}",
            f"redis://127.0.0.1:{own.redis_port}/0",
            "local",
            "local",
        )
    names = Names(f"{scenario.name}-{time.monotonic_ns() % 10**8}")
    client = redis.Redis.from_url(services.redis_url)
    with ReplayServer(keepalive_seconds=scenario.keepalive) as replay:
        pipe = Pipeline(services, names, tmp_path, sse_url=replay.url, overrides=ENV)
        run = Run(pipe, replay, own)
        replay.plan.extend(scenario.plan)
        stop_sampling, stop_tail = threading.Event(), threading.Event()
        try:
            run.start_producer()
            wait_for(lambda: replay.connections, 30, "the producer to connect")
            for replica in range(scenario.replicas):
                run.start_processor(replica)
            threading.Thread(target=run.sample_memory, args=(stop_sampling,), daemon=True).start()

            start = time.time()
            count = int(scenario.seconds * RATE)
            payloads = with_noise(live_stream(count, RATE, start), start, RATE)
            if scenario.hostile:
                middle = len(payloads) // 2
                payloads[middle:middle] = hostile_events(start + middle / RATE)
            player = play_async(replay, payloads, RATE)
            if scenario.inject:
                scenario.inject(run)
            player.join()

            window_ms = pipe.window_ms
            stream_end = time.time()
            # the breakdowns of every window checked, counted from the payloads alike
            breakdowns = truth_breakdowns(payloads, window_ms)
            if scenario.ends:
                # nothing follows: heartbeats must close every window, the last included,
                # on proof that the stream is quiet (keep-alives, or an empty reconnect)
                expected = truth(payloads, window_ms)
                last_end = (max(expected) + window_ms) / 1000
                bound = float(ENV["GRACE_SECONDS"]) + float(ENV["READ_TIMEOUT_SECONDS"]) + 5
                wait = max(0.0, last_end + bound - time.time()) + 15  # 15 s of slack
                assert_index_matches_truth(
                    pipe, client, expected, timeout=wait, breakdowns=breakdowns
                )
                exact_after = time.time() - last_end
            else:
                # the stream goes on (it always does): later windows close behind it
                tail = threading.Thread(
                    target=replay.play,
                    args=(live_stream(4_000, 20, stream_end, first=count), 20, False),
                    kwargs={"stop": stop_tail},
                    daemon=True,
                )
                tail.start()
                expected = {
                    w: c
                    for w, c in truth(payloads, window_ms).items()
                    if w + window_ms <= stream_end * 1000
                }
                # the check covers the stream but for its last window (which may still be
                # open when the tail begins) and a second of slack
                checked = sum(sum(c.values()) for c in expected.values())
                assert checked >= count - RATE * (window_ms / 1000 + 1), checked
                assert_index_matches_truth(
                    pipe, client, expected, timeout=150, breakdowns=breakdowns
                )
                exact_after = time.time() - stream_end

            if scenario.plan:
                _plan_served(run, scenario.plan)
            if scenario.proves:
                scenario.proves(run)
            dead = _dead_letters(services.kafka, names.topic, invalid(payloads))
            for name, service in run.services().items():
                assert service.alive, f"{name} is down\n{service.output()[-3000:]}"
            if scenario.hostile:  # bad input is dead-lettered, never a reason to fail
                for processor in run.processors:
                    assert not _failures(processor), "\n---\n".join(_failures(processor))
            late = sum(
                metric(s, "wikipulse_processor_records_total", 'verdict="late"')
                for s in run.processors
            )
            assert late == 0, "events behind the watermark: a heartbeat overtook them"
            growth = {
                name: round((max(samples) - samples[0]) / 1024, 1)
                for name, samples in run.rss.items()
                if samples
            }
            for name, mib in growth.items():
                assert mib < MEMORY_BOUND_MIB, f"{name} grew by {mib} MiB"
            _record(
                scenario,
                events=sum(sum(c.values()) for c in truth(payloads, window_ms).values()),
                payloads=len(payloads),
                windows_checked=len(expected),
                dead_letters=len(dead),
                dead_letter_reasons=sorted({r[:60] for r in dead.values()}),
                connections=[c.status for c in replay.connections],
                seconds_to_exact=round(exact_after, 1),
                seconds_to_exact_from="last window end" if scenario.ends else "stream end",
                seconds_from_fault_to_exact=(
                    round(time.time() - run.fault_at, 1) if run.fault_at else None
                ),
                peak_rss_growth_mib=growth,
                late=late,
            )
        finally:
            stop_tail.set()
            stop_sampling.set()
            pipe.stop_all()
            client.close()


def _dead_letters(kafka: str, topic: str, bad: set[bytes]) -> dict[bytes, str]:
    """Wait until every invalid payload is dead-lettered; return value -> reason.

    Counts, not sets: each invalid record of the raw topic has exactly one dead letter
    (a recount or a lost partition must not write one twice). An event over the
    producer's size limit travels without its data: its dead letter is empty and its
    reason names the size.
    """
    wanted = {raw if len(raw) <= MAX_EVENT_BYTES else b"" for raw in bad}

    def arrived() -> dict[bytes, str] | None:
        letters = read_topic(kafka, f"{topic}.dlq")
        found = {m.value(): dict(m.headers() or [])[Header.REASON].decode() for m in letters}
        return found if wanted <= set(found) else None

    found: dict[bytes, str] = wait_for(arrived, 60, "every invalid record in the DLQ", 1.0)
    assert set(found) == wanted, "something valid was dead-lettered"
    assert all(found.values()), "a dead letter without a reason"
    if b"" in found:
        assert "exceeds" in found[b""]
    raw = Counter(
        m.value() or b""
        for m in read_topic(kafka, topic)
        if m.key() != HEARTBEAT_KEY.encode() and judge(m.value() or b"") == "invalid"
    )
    letters = Counter(m.value() or b"" for m in read_topic(kafka, f"{topic}.dlq"))
    assert letters == raw, f"dead letters {letters - raw} too many, {raw - letters} missing"
    return found


def _failures(processor: Service) -> list[str]:
    """What made a processor start over, from its log: it logs the failure and then
    re-executes itself in the same process, so being alive does not show it. (The known
    start-up race, a just-created topic without a leader yet, is logged as a
    warning, not as a failure.)"""
    blocks = processor.output().split("the processor failed")[1:]
    return [block.split("restarting in")[0][-800:] for block in blocks]


def _record(scenario: Scenario, **observed: object) -> None:
    folder = ARTIFACTS / "faults"
    folder.mkdir(parents=True, exist_ok=True)
    observed = {"scenario": scenario.name, "fault": scenario.fault, **observed}
    (folder / f"{scenario.name}.json").write_text(json.dumps(observed, indent=2) + "\n")
