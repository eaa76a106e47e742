"""``python -m wikipulse.health URL``: the container healthcheck of the producer and the
processor, from their ``/metrics``; ``python -m wikipulse.health --kafka``: whether the
Kafka cluster can take the raw topic's writes, and if not, why.

Unhealthy (exit 1) when ``/metrics`` does not answer, when the service keeps failing
(the processor starts over by itself after a failure, a fresh process in the same
container, so a restart policy never sees it; ``wikipulse_processor_restarts_in_a_row``
at ``--max-restarts`` or more shows an operator the loop in ``docker compose ps``), and
while the processor recounts from Kafka what Redis lost
(``wikipulse_processor_recounting_partitions`` above 0): its windows are behind then.

On a cluster the producer does not fail when brokers go: with ``acks=all`` it waits, and
the stream waits with it, so every process looks healthy while nothing is counted. The
``--kafka`` check names what is missing: the brokers that do not answer, and the raw
topic's partitions that have no leader or fewer live in-sync replicas than its
``min.insync.replicas`` (their writes are refused).
"""

from __future__ import annotations

import argparse
import socket
import sys
import urllib.request

from wikipulse.settings import KafkaSettings

RESTARTS_METRIC = "wikipulse_processor_restarts_in_a_row"
RECOUNTING_METRIC = "wikipulse_processor_recounting_partitions"


def verdict(metrics_text: str, max_restarts: int) -> str | None:
    """Why the service is unhealthy, or None when it is healthy."""
    looping = liveness_verdict(metrics_text, max_restarts)
    if looping:
        return looping
    for line in metrics_text.splitlines():
        if line.startswith(RECOUNTING_METRIC + " "):
            recounting = float(line.split()[1])
            if recounting > 0:
                return f"recounting {recounting:.0f} partitions from Kafka after Redis lost writes"
    return None


def liveness_verdict(metrics_text: str, max_restarts: int) -> str | None:
    """Why the process should be restarted from outside, or None: only a loop of
    failures, which the processor's own restarts (a fresh process in the same
    container) did not end. A recount is work to let finish, never a reason to kill."""
    for line in metrics_text.splitlines():
        if line.startswith(RESTARTS_METRIC + " "):
            restarts = float(line.split()[1])
            if restarts >= max_restarts:
                return f"{restarts:.0f} restarts in a row without a healthy minute"
    return None


def kafka_verdict(settings: KafkaSettings, timeout: float = 10.0) -> str | None:
    """Why the cluster cannot take writes to the raw topic, or None when it can.

    Metadata alone is not enough: a broker that lost the controller quorum keeps
    reporting the brokers and in-sync replicas it last knew. So every broker listed is
    also dialled, and only the replicas that answer count as in sync.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({**settings.client_config(), "log_level": 0})
    topic = settings.raw_topic
    try:
        metadata = admin.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        return f"no Kafka broker at {settings.kafka_broker_address} answers: {exc}"
    down = sorted(b.id for b in metadata.brokers.values() if not _answers(b.host, b.port))
    problems = []
    if down:
        problems.append(
            f"brokers {', '.join(map(str, down))} of {len(metadata.brokers)} do not answer"
        )
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        problems.append(f"topic {topic} is not available")
        return "; ".join(problems)
    try:
        resource = ConfigResource("topic", topic)
        config = admin.describe_configs([resource])[resource].result(timeout=timeout)
        min_isr = int(config["min.insync.replicas"].value)
    except Exception:  # without an answer, assume the usual setting
        min_isr = 2 if len(metadata.brokers) >= 3 else 1
    leaderless = sorted(p.id for p in found.partitions.values() if p.leader < 0 or p.leader in down)
    short = sorted(
        p.id
        for p in found.partitions.values()
        if len([r for r in p.isrs if r not in down]) < min_isr
    )
    if leaderless:
        problems.append(f"partitions {_ids(leaderless)} of {topic} have no live leader")
    if short:
        problems.append(
            f"partitions {_ids(short)} of {topic} have fewer live in-sync replicas than "
            f"min.insync.replicas={min_isr}: writes are refused"
        )
    return "; ".join(problems) or None


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError:
        return False
    return True


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", help="the service's /metrics URL")
    parser.add_argument("--max-restarts", type=int, default=3)
    parser.add_argument(
        "--kafka",
        action="store_true",
        help="check that Kafka (KAFKA_BROKER_ADDRESS, RAW_TOPIC) can take the raw topic's writes",
    )
    args = parser.parse_args(argv)
    if args.kafka:
        kafka_problem = kafka_verdict(KafkaSettings())
        if kafka_problem:
            sys.exit(f"unhealthy: {kafka_problem}")
        if args.url is None:
            return
    if args.url is None:
        parser.error("give the service's /metrics URL, or --kafka")
    try:
        with urllib.request.urlopen(args.url, timeout=3) as response:
            text = response.read().decode()
    except OSError as exc:
        sys.exit(f"unhealthy: {args.url} does not answer: {exc}")
    problem = verdict(text, args.max_restarts)
    if problem:
        sys.exit(f"unhealthy: {problem}")


if __name__ == "__main__":
    main()
