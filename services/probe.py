"""Readiness probe for the local services: Kafka answers metadata, Redis answers PING.

Used by services/local.sh, so `make services` reports ready only when clients can
really talk to the broker, not merely when its port is open.

    python services/probe.py kafka 127.0.0.1:9092[,127.0.0.1:9094,...] [timeout_s] [brokers]
    python services/probe.py redis 127.0.0.1:6379 [timeout_s]
    python services/probe.py sentinel 127.0.0.1:26379,... [timeout_s] [master] [replicas]
"""

from __future__ import annotations

import socket
import sys
import time


def kafka_ready(address: str, timeout: float, brokers: int = 1) -> str:
    """Ready once metadata lists ``brokers`` brokers: a cluster's client that finds fewer
    registered could not yet create a topic with replication factor 3."""
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        admin = AdminClient({"bootstrap.servers": address, "log_level": 0})
        try:
            md = admin.list_topics(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            if md.brokers and len(md.brokers) >= brokers:
                return f"cluster {md.cluster_id}, {len(md.brokers)} broker(s)"
            last = f"{len(md.brokers)} of {brokers} brokers registered"
        except Exception as exc:  # the broker is still starting
            last = str(exc)
        time.sleep(0.5)
    raise SystemExit(f"kafka at {address} did not answer metadata requests: {last}")


def redis_ready(address: str, timeout: float) -> str:
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
                if reply.startswith(b"+PONG"):
                    return "PONG"
                last = reply.decode(errors="replace").strip()
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise SystemExit(f"redis at {address} did not answer PING: {last}")


def sentinel_ready(addresses: str, timeout: float, master: str, replicas: int) -> str:
    """Ready once every Sentinel knows the primary as up, its ``replicas`` replicas and
    the other Sentinels, and the primary has its replicas online: only then can a
    failover happen (and the processor's WAIT for a replica be answered)."""
    import redis

    sentinels = [(h, int(p)) for h, p in (a.rsplit(":", 1) for a in addresses.split(","))]
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            states = [
                redis.Redis(host, port, socket_timeout=2).sentinel_master(master)
                for host, port in sentinels
            ]
            primary = states[0]
            info = redis.Redis(primary["ip"], primary["port"], socket_timeout=2).info("replication")
            online = sum(
                1 for k, v in info.items() if k.startswith("slave") and v.get("state") == "online"
            )
            ready = [
                s["is_master"]
                and not s["is_sdown"]
                and s["num-slaves"] >= replicas
                and s["num-other-sentinels"] >= len(sentinels) - 1
                for s in states
            ]
            if all(ready) and online >= replicas:
                return f"primary {primary['ip']}:{primary['port']} with {online} replica(s)"
            last = f"primary with {online} replica(s) online; sentinels ready: {ready}"
        except Exception as exc:  # still starting
            last = str(exc)
        time.sleep(0.3)
    raise SystemExit(f"redis sentinels at {addresses} not ready for {master!r}: {last}")


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] not in ("kafka", "redis", "sentinel"):
        raise SystemExit(__doc__)
    timeout = float(argv[3]) if len(argv) > 3 else 60.0
    if argv[1] == "kafka":
        print(kafka_ready(argv[2], timeout, int(argv[4]) if len(argv) > 4 else 1))
    elif argv[1] == "sentinel":
        print(sentinel_ready(argv[2], timeout, argv[4], int(argv[5])))
    else:
        print(redis_ready(argv[2], timeout))


if __name__ == "__main__":
    main(sys.argv)
