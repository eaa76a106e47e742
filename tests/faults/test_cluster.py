"""Fault injection on a three-broker KRaft cluster: brokers lost, and the counts stay exact.

The same pipeline as ``test_faults.py`` (replay server -> producer -> Kafka -> two
processor replicas -> Redis, on a live-stamped stream with duplicates, canaries and
malformed records), on the session's ``cluster`` fixture: three combined
broker+controller nodes from ``services/local.sh up --brokers 3``, the raw and
dead-letter topics created with replication factor 3 and ``min.insync.replicas=2``, as
are Kafka's own offsets and transaction topics. Each scenario loses brokers while the
stream plays, first proves that it did (the broker's port refuses connections, the
cluster moved its partitions' leadership away and dropped it from their in-sync
replicas), then checks what a user relies on:

* every window that ended before the stream's tail equals an independent count;
* every invalid record is in the dead-letter topic;
* no processor counted an event as late, none restarted itself on a failure (its log),
  no service process is down; a processor whose commit hung in librdkafka is started
  over by its commit watchdog, and such restarts are reported (``watchdog_restarts``);

and reports how long no new window completed (the longest gap between two windows
appearing in Redis, against a window length of 3 s). ``artifacts/faults/cluster-*.json``
hold what each one saw, tabulated in docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from confluent_kafka.admin import AdminClient

from devtools.observe import indexed_windows, metric, wait_for
from devtools.replay import ReplayServer
from devtools.servers import LocalServers, Services, free_port
from devtools.truth import invalid, truth
from tests.faults.test_faults import ENV, RATE, Run, _dead_letters, _failures, _record
from tests.support.names import Names
from tests.support.pipeline import Pipeline, assert_index_matches_truth
from tests.support.streams import live_stream, with_noise
from wikipulse.health import kafka_verdict
from wikipulse.settings import KafkaSettings

BROKERS = (1, 2, 3)
#: the topics whose replicas must all be back in sync before a broker may go next
INTERNAL_TOPICS = ("__consumer_offsets", "__transaction_state")
#: What the services are told of the cluster. A consumer that hears nothing from its
#: group coordinator for its session timeout leaves the group, and its transaction then
#: fails (UNKNOWN_MEMBER_ID): the processor restarts. A killed broker's coordinators move
#: only once the controllers fence it (broker.session.timeout.ms, 9 s) and the new one has
#: loaded the group, so the processor's 10 s default is too short on a cluster
#: (docs/operations.md#a-kafka-cluster).
CLUSTER_ENV = {
    "RAW_TOPIC_REPLICATION_FACTOR": "3",
    "SESSION_TIMEOUT_SECONDS": "20",
    "PYTHONFAULTHANDLER": "1",
}
#: Nothing said but the bootstrap list, as a new user starts the services: the topics
#: take the cluster's replication (3, min ISR 2, from the brokers' defaults) and the
#: processor picks its session timeout from the broker count (20 s).
DEFAULTS_ENV = {"PYTHONFAULTHANDLER": "1"}
SETTINGS = {"explicit": CLUSTER_ENV, "defaults": DEFAULTS_ENV}


@dataclass
class ClusterRun(Run):
    """A scenario in progress on the cluster, and what it saw."""

    kafka: str = ""
    observed: dict[str, Any] = field(default_factory=dict)

    @property
    def cluster(self) -> LocalServers:
        assert self.servers is not None
        return self.servers

    def topics(self) -> tuple[str, ...]:
        names = self.pipe.names
        return (names.topic, f"{names.topic}.dlq", *INTERNAL_TOPICS)


# ---------------------------------------------------------------- the cluster's state


def partitions(kafka: str, topic: str) -> dict[int, tuple[int, list[int]]]:
    """Partition -> (leader, in-sync replicas) of ``topic``, as the cluster reports them."""
    admin = AdminClient({"bootstrap.servers": kafka, "log_level": 0})
    # all topics: asking for one by name would create it (with 1 partition) if missing
    metadata = admin.list_topics(timeout=10).topics[topic]
    return {p.id: (p.leader, sorted(p.isrs)) for p in metadata.partitions.values()}


def leaders(kafka: str, topic: str) -> dict[int, int]:
    """Partition -> its leader's broker id (-1: none)."""
    return {p: leader for p, (leader, _) in partitions(kafka, topic).items()}


def busiest_leader(kafka: str, topic: str) -> int:
    """The broker that leads the most partitions of ``topic`` (the lowest id on a tie)."""
    led = [leader for leader, _ in partitions(kafka, topic).values()]
    return max(BROKERS, key=lambda broker: (led.count(broker), -broker))


def in_sync_everywhere(kafka: str, topics: tuple[str, ...], brokers: set[int]) -> bool:
    """Whether every partition of ``topics`` has exactly ``brokers`` in sync, with a
    leader among them."""
    try:
        for topic in topics:
            for leader, isr in partitions(kafka, topic).values():
                if set(isr) != brokers or leader not in brokers:
                    return False
    except Exception:  # a broker is still coming up: not yet
        return False
    return True


def refused(port: int) -> bool:
    """Whether a connection to ``port`` on this machine is refused (nothing listens)."""
    try:
        socket.create_connection(("127.0.0.1", port), 2).close()
    except ConnectionRefusedError:
        return True
    return False


def heal(run: ClusterRun) -> None:
    """Every broker running and every replica back in sync (the next scenario's start)."""
    run.cluster.start("kafka")  # starts the nodes that are down, if any
    wait_for(
        lambda: in_sync_everywhere(run.kafka, run.topics(), set(BROKERS)),
        180,
        lambda: f"every replica in sync again: {[partitions(run.kafka, t) for t in run.topics()]}",
        1.0,
    )


def lose(run: ClusterRun, broker: int) -> None:
    """SIGKILL ``broker`` and prove it: its port refuses connections, and the cluster
    moves the raw topic's leadership away from it and drops it from every in-sync set."""
    run.cluster.kill_broker(broker)
    assert refused(run.cluster.kafka_ports[broker - 1]), f"broker {broker} still answers"
    run.observed.setdefault("killed", []).append(broker)


def the_cluster_dropped(run: ClusterRun, gone: set[int], timeout: float = 60) -> float:
    """Wait until no partition of the raw topic is led by a broker of ``gone`` nor has one
    in sync; returns how long that took (the cluster fences a silent broker after
    ``broker.session.timeout.ms``, 9 s by default)."""
    began = time.monotonic()
    topic = run.pipe.names.topic
    wait_for(
        lambda: all(
            leader not in gone and not gone & set(isr)
            for leader, isr in partitions(run.kafka, topic).values()
        ),
        timeout,
        lambda: f"brokers {gone} out of {topic}: {partitions(run.kafka, topic)}",
        0.5,
    )
    return round(time.monotonic() - began, 1)


# ---------------------------------------------------------------- the faults


def kill_the_busiest_leader_for_20_s(run: ClusterRun) -> None:
    time.sleep(6)
    topic = run.pipe.names.topic
    victim = busiest_leader(run.kafka, topic)
    run.observed["leaders_before"] = leaders(run.kafka, topic)
    lose(run, victim)
    killed_at = time.time()
    run.observed["seconds_to_new_leaders"] = the_cluster_dropped(run, {victim})
    run.observed["leaders_without_it"] = leaders(run.kafka, topic)
    time.sleep(max(0.0, 20 - (time.time() - killed_at)))
    assert refused(run.cluster.kafka_ports[victim - 1]), "the broker came back before 20 s"
    run.observed["restart_began_after_kill_s"] = round(time.time() - killed_at, 1)
    began = time.time()
    run.cluster.start_broker(victim)
    heal(run)
    run.observed["seconds_from_restart_to_in_sync"] = round(time.time() - began, 1)


def restart_every_broker_in_turn(run: ClusterRun) -> None:
    time.sleep(4)
    topic = run.pipe.names.topic
    run.observed["leaders_before"] = leaders(run.kafka, topic)
    for broker in BROKERS:
        pid = run.cluster.broker_pid(broker)
        run.cluster.stop_broker(broker)  # SIGTERM: a controlled shutdown
        assert run.cluster.broker_pid(broker) is None and refused(
            run.cluster.kafka_ports[broker - 1]
        ), f"broker {broker} (pid {pid}) still runs"
        run.observed.setdefault("restarted", []).append(broker)
        run.cluster.start_broker(broker)
        assert run.cluster.broker_pid(broker) not in (None, pid), "the same broker process"
        heal(run)  # in sync again before the next one goes


def lose_a_broker_for_good(run: ClusterRun) -> None:
    time.sleep(5)
    victim = busiest_leader(run.kafka, run.pipe.names.topic)
    lose(run, victim)
    run.observed["seconds_to_new_leaders"] = the_cluster_dropped(run, {victim})


def lose_two_brokers_then_one_returns(run: ClusterRun) -> None:
    time.sleep(5)
    assert run.producer is not None
    topic = run.pipe.names.topic
    first = busiest_leader(run.kafka, topic)
    second = next(b for b in BROKERS if b != first)
    # where the processors' group coordinator was (reported beside their restarts)
    admin = AdminClient({"bootstrap.servers": run.kafka, "log_level": 0})
    group = run.pipe.names.group
    described = admin.describe_consumer_groups([group], request_timeout=15)[group].result()
    run.observed["group_coordinator"] = described.coordinator.id
    lose(run, first)
    lose(run, second)
    # producing stops: what the producer has acknowledged stays put while the stream plays
    time.sleep(10)
    published = metric(run.producer, "wikipulse_producer_events_published")
    received = metric(run.producer, "wikipulse_producer_events_received")
    time.sleep(10)
    run.observed["published_while_two_were_down"] = (
        metric(run.producer, "wikipulse_producer_events_published") - published
    )
    assert run.observed["published_while_two_were_down"] == 0, "writes went on with 1 of 3"
    run.observed["received_while_two_were_down"] = (
        metric(run.producer, "wikipulse_producer_events_received") - received
    )
    # the health check says why
    settings = KafkaSettings(kafka_broker_address=run.kafka, raw_topic=topic)
    run.observed["health"] = kafka_verdict(settings)
    assert run.observed["health"] is not None, "the health check saw nothing wrong"
    assert "do not answer" in run.observed["health"], run.observed["health"]
    assert "writes are refused" in run.observed["health"], run.observed["health"]
    dashboard = httpx.get(f"http://127.0.0.1:{run.observed['dashboard_port']}/healthz", timeout=5)
    run.observed["dashboard_healthz"] = [dashboard.status_code, dashboard.json()]
    assert dashboard.status_code == 503, dashboard.text
    # one returns: two in sync again, writes resume
    run.cluster.start_broker(first)
    run.observed["restarted"] = [first]


@dataclass(frozen=True)
class ClusterScenario:
    name: str
    fault: str  # for the table in docs/reliability.md
    inject: Callable[[ClusterRun], None]
    seconds: float  # of stream, at RATE events/s
    dashboard: bool = False
    #: The one restart a scenario tolerates: with two of three combined nodes lost the
    #: controller quorum is gone for longer than the session timeout; the group's members
    #: can be expelled (seen whether or not the coordinator's broker was among the lost),
    #: and once a broker is back their next commit is refused (UNKNOWN_MEMBER_ID) and
    #: they start over, exactly (the windows are checked first). Only then, and counted:
    #: any other restart fails the scenario.
    quorum_lost: bool = False

    def session_can_expire(self, run: ClusterRun) -> bool:
        return self.quorum_lost


SCENARIOS = [
    ClusterScenario(
        "cluster-leader-sigkill",
        "3 brokers: the one leading the most raw partitions SIGKILLed, restarted 20 s later",
        kill_the_busiest_leader_for_20_s,
        seconds=40,
    ),
    ClusterScenario(
        "cluster-rolling-restart",
        "3 brokers restarted one at a time, each back in sync before the next",
        restart_every_broker_in_turn,
        seconds=60,
    ),
    ClusterScenario(
        "cluster-broker-lost",
        "3 brokers: the busiest leader SIGKILLed for good, counting goes on with 2",
        lose_a_broker_for_good,
        seconds=30,
    ),
    ClusterScenario(
        "cluster-two-brokers-lost",
        "3 brokers: 2 SIGKILLed (fewer than min.insync.replicas left), one back 20 s later",
        lose_two_brokers_then_one_returns,
        seconds=40,
        dashboard=True,
        quorum_lost=True,
    ),
]


#: The scenarios that lose brokers also run with the defaults; CI runs the first with them.
BROKER_LOSS = ("cluster-leader-sigkill", "cluster-broker-lost", "cluster-two-brokers-lost")


def _cases() -> list[Any]:
    cases = []
    for scenario in SCENARIOS:
        variants = ("explicit", "defaults") if scenario.name in BROKER_LOSS else ("explicit",)
        for variant in variants:
            in_ci = scenario is SCENARIOS[0] and variant == "defaults"
            marks = () if in_ci else pytest.mark.cluster_more
            name = scenario.name if variant == "explicit" else f"{scenario.name}-defaults"
            cases.append(pytest.param(scenario, variant, id=name, marks=marks))
    return cases


@pytest.mark.parametrize(("scenario", "variant"), _cases())
def test_the_counts_stay_exact_on_a_cluster_through(
    scenario: ClusterScenario, variant: str, cluster: Services, tmp_path: Path
) -> None:
    assert cluster.local is not None and cluster.local.brokers == 3
    case = scenario.name if variant == "explicit" else f"{scenario.name}-defaults"
    names = Names(f"{case}-{time.monotonic_ns() % 10**8}")
    client = redis.Redis.from_url(cluster.redis_url)
    base = {k: v for k, v in ENV.items() if k != "SESSION_TIMEOUT_SECONDS"}
    overrides = {**base, **SETTINGS[variant]}
    # Keep-alives while idle: before the stream begins the producer has no event to
    # resume from, so a reconnect after a read timeout would miss what was appended
    # meanwhile (the cluster's set-up takes long enough for several such timeouts).
    with ReplayServer(keepalive_seconds=1.0) as replay:
        pipe = Pipeline(cluster, names, tmp_path, sse_url=replay.url, overrides=overrides)
        run = ClusterRun(pipe, replay, cluster.local, kafka=cluster.kafka)
        stop_sampling, stop_tail, stop_watch = (
            threading.Event(),
            threading.Event(),
            threading.Event(),
        )
        seen: dict[int, float] = {}  # window start -> when it first was complete in Redis
        try:
            run.cluster.start("kafka")  # a broker a failed scenario left down
            run.start_producer()
            wait_for(lambda: replay.connections, 60, "the producer to connect")
            for replica in range(2):
                run.start_processor(replica)
            if scenario.dashboard:
                port = str(free_port())
                run.observed["dashboard_port"] = port
                pipe.dashboard(DASHBOARD_PORT=port, STALE_AFTER_SECONDS="10")
            threading.Thread(target=run.sample_memory, args=(stop_sampling,), daemon=True).start()
            threading.Thread(
                target=_watch_windows, args=(client, names.prefix, seen, stop_watch), daemon=True
            ).start()
            # the topics exist and are fully replicated before anything is lost
            wait_for(
                lambda: in_sync_everywhere(cluster.kafka, run.topics(), set(BROKERS)),
                120,
                "the topics in sync on all three brokers",
                1.0,
            )
            assert _min_insync(cluster.kafka, names.topic) == "2"
            replicas = {len(isr) for _, isr in partitions(cluster.kafka, names.topic).values()}
            assert replicas == {3}, replicas
            run.observed["settings"] = variant

            start = time.time()
            count = int(scenario.seconds * RATE)
            payloads = with_noise(live_stream(count, RATE, start), start, RATE)
            ended: list[float] = []

            def stream() -> None:
                """The scenario's events, then at once a thin tail (a live stream never
                stops, however long the fault's repair takes): its windows are not
                checked."""
                replay.play(payloads, RATE, False)
                ended.append(time.time())
                tail = live_stream(4_000, 20, ended[0], first=count)
                replay.play(tail, 20, False, stop=stop_tail)

            threading.Thread(target=stream, daemon=True).start()
            fault_at = time.time()
            scenario.inject(run)
            wait_for(lambda: ended, scenario.seconds + 60, "the stream to be played")
            stream_end = ended[0]
            window_ms = pipe.window_ms
            expected = {
                w: c
                for w, c in truth(payloads, window_ms).items()
                if w + window_ms <= stream_end * 1000
            }
            checked = sum(sum(c.values()) for c in expected.values())
            assert checked >= count - RATE * (window_ms / 1000 + 1), checked
            try:
                assert_index_matches_truth(pipe, client, expected, timeout=240)
            except AssertionError as exc:
                # windows that never came: name the hang the commit watchdog should end
                hung = str(exc).startswith("timed out") and _hung_in_send_offsets(run)
                if hung:
                    raise AssertionError(f"{exc}\n{LIBRDKAFKA_HANG}; {hung}") from exc
                raise
            exact_after = time.time() - stream_end
            stop_watch.set()

            dead = _dead_letters(cluster.kafka, names.topic, invalid(payloads))
            for name, service in run.services().items():
                assert service.alive, f"{name} is down\n{service.output()[-3000:]}"
            restarts = {f"processor-{i}": _failures(p) for i, p in enumerate(run.processors)}
            expected_restarts = [
                failure
                for failures in restarts.values()
                for failure in failures
                if scenario.session_can_expire(run) and "UNKNOWN_MEMBER_ID" in failure
            ]
            unexpected = {
                name: [f for f in failures if f not in expected_restarts]
                for name, failures in restarts.items()
            }
            assert not any(unexpected.values()), unexpected
            late = sum(
                metric(s, "wikipulse_processor_records_total", 'verdict="late"')
                for s in run.processors
            )
            assert late == 0, "events behind the watermark: a heartbeat overtook them"
            # from the fault to the last window checked (the tail's are not)
            appeared = sorted(t for w, t in seen.items() if t >= fault_at and w in expected)
            gaps = [b - a for a, b in zip([fault_at, *appeared], appeared, strict=False)]
            growth = {
                name: round((max(samples) - samples[0]) / 1024, 1)
                for name, samples in run.rss.items()
                if samples
            }
            run.observed.pop("dashboard_port", None)
            _record(
                dataclasses.replace(scenario, name=case),  # type: ignore[arg-type]
                events=sum(sum(c.values()) for c in truth(payloads, window_ms).values()),
                payloads=len(payloads),
                windows_checked=len(expected),
                windows_exact=len(expected),  # assert_index_matches_truth compared each
                dead_letters=len(dead),
                dead_letter_reasons=sorted({r[:60] for r in dead.values()}),
                connections=[c.status for c in replay.connections],
                seconds_to_exact=round(exact_after, 1),
                seconds_to_exact_from="stream end",
                seconds_without_new_windows=round(max(gaps, default=0.0), 1),
                # the slowest window: from its end to complete in Redis (grace included)
                max_seconds_window_end_to_complete=round(
                    max(
                        (seen[w] - (w + window_ms) / 1000 for w in expected if w in seen), default=0
                    ),
                    1,
                ),
                window_seconds=window_ms / 1000,
                processor_restarts=len(expected_restarts),
                # processors that started over because a commit hung in librdkafka
                watchdog_restarts=sum(p.output().count(WATCHDOG_LINE) for p in run.processors),
                producer_rewinds=run.producer.output().count("re-reading the stream")
                if run.producer
                else 0,
                peak_rss_growth_mib=growth,
                late=late,
                **run.observed,
            )
        finally:
            stop_tail.set()
            stop_sampling.set()
            stop_watch.set()
            pipe.stop_all()
            client.close()
            heal_quietly(run)


#: An open librdkafka bug (confluent-kafka 2.12.2 here): when a dead broker held the
#: group coordinator, the transactional producer's send_offsets_to_transaction() can
#: block for ever (it ignores its timeout, and the broker, gone from the metadata, is
#: decommissioned while still cached as coordinator). The processor then stops counting
#: with every process up, until its commit watchdog (processor/watchdog.py) starts it
#: over. Seen in about 2 of 5 runs of the broker-SIGKILL scenario.
LIBRDKAFKA_HANG = (
    "librdkafka hang not ended by the commit watchdog: send_offsets_to_transaction() "
    "never returns after the group coordinator's broker died (confluentinc/librdkafka#5511)"
)
#: What a processor logs when its commit watchdog starts it over.
WATCHDOG_LINE = "a checkpoint commit has been blocked for"


def _hung_in_send_offsets(run: ClusterRun) -> str:
    """Which processors are stuck in that call, as their own stacks show: each is sent
    SIGABRT, on which Python's faulthandler (``PYTHONFAULTHANDLER``) writes every
    thread's stack to its log. Only called once the scenario has failed anyway."""
    stuck = []
    for replica, processor in enumerate(run.processors):
        if not processor.alive or processor.process is None:
            continue
        before = len(processor.output())
        processor.process.send_signal(signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            processor.process.wait(10)
        dump = processor.output()[before:]
        current = dump.split("Current thread", 1)[-1].split("\n\n", 1)[0]
        if "in send_offsets_to_transaction" in current:
            stuck.append(f"processor-{replica}")
    return f"stuck: {', '.join(stuck)}" if stuck else ""


def _watch_windows(
    client: redis.Redis, prefix: str, seen: dict[int, float], stop: threading.Event
) -> None:
    """Note when each window first is complete in Redis (every 0.25 s)."""
    while not stop.wait(0.25):
        try:
            for start in indexed_windows(client, prefix):
                seen.setdefault(start, time.time())
        except redis.RedisError:
            continue


def _min_insync(kafka: str, topic: str) -> str:
    from confluent_kafka.admin import ConfigResource

    admin = AdminClient({"bootstrap.servers": kafka, "log_level": 0})
    resource = ConfigResource("topic", topic)
    config = admin.describe_configs([resource])[resource].result(timeout=15)
    return str(config["min.insync.replicas"].value)


def heal_quietly(run: ClusterRun) -> None:
    """Leave the cluster whole for the next scenario, whatever this one did."""
    try:
        run.cluster.start("kafka")
    except RuntimeError as exc:  # reported by the next scenario's own start
        print(f"could not restart the cluster's brokers: {exc}")
