"""The services of one test as a pipeline, and the check that its windows are exact.

The end-to-end tests start ``python -m producer`` and ``python -m processor`` exactly as
a user would (`devtools.processes`), against the session's real Kafka and Redis, fed by
the replay server, and compare what reached Redis with the independent ground truth
(`devtools.truth`) through the Redis contract (`devtools.observe`).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import redis

from devtools.observe import (
    indexed_windows,
    partial_windows,
    wait_for,
    window_breakdowns,
    window_counts,
)
from devtools.processes import Service
from devtools.servers import Services
from tests.support.names import Names


@dataclass
class Pipeline:
    """Environment shared by the services of one test, and the services it started."""

    services: Services
    names: Names
    workdir: Path
    sse_url: str = ""
    overrides: dict[str, str] = field(default_factory=dict)
    started: list[Service] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "KAFKA_BROKER_ADDRESS": self.services.kafka,
            "RAW_TOPIC": self.names.topic,
            "RAW_TOPIC_PARTITIONS": "6",
            "REDIS_URL": self.services.redis_url,
            "REDIS_SENTINELS": self.services.sentinels,
            "REDIS_KEY_PREFIX": self.names.prefix,
            "CONSUMER_GROUP": self.names.group,
            "SSE_URL": self.sse_url,
            "WINDOW_SECONDS": "3",
            "GRACE_SECONDS": "1",
            "HEARTBEAT_SECONDS": "0.5",
            "COMMIT_INTERVAL_SECONDS": "0.5",
            "READ_TIMEOUT_SECONDS": "5",
            "BACKOFF_INITIAL_SECONDS": "0.2",
            "BACKOFF_MAX_SECONDS": "2",
            "BACKFILL": "0",  # a first start reads from now; the backfill tests opt in
            "LOG_LEVEL": "INFO",
        }
        env.update(self.overrides)
        env.update(extra)
        return env

    def producer(self, name: str = "producer", **extra: str) -> Service:
        return self._start("producer", name, extra)

    def processor(self, replica: int = 0, **extra: str) -> Service:
        extra.setdefault("STATE_DIR", str(self.workdir / f"state-{replica}"))
        return self._start("processor", f"processor-{replica}", extra)

    def dashboard(self, **extra: str) -> Service:
        return self._start("dashboard", "dashboard", extra)

    def _start(self, module: str, name: str, extra: dict[str, str]) -> Service:
        service = Service(module, self.env(**extra), self.workdir / f"{name}.log").start()
        self.started.append(service)
        return service

    def stop_all(self) -> None:
        for service in self.started:
            if service.alive:
                service.process.kill() if service.process else None
                if service.process:
                    service.process.wait(10)

    @property
    def window_ms(self) -> int:
        return int(self.env()["WINDOW_SECONDS"]) * 1000

    def logs(self) -> str:
        return "\n".join(f"--- {s.log.name}\n{s.output()[-4000:]}" for s in self.started)


#: How many windows at the start of a stream may be published partial: the window of its
#: first record (the producer marks that time in every partition before it).
LEADING_PARTIAL = 1


def assert_index_matches_truth(
    pipeline: Pipeline,
    client: redis.Redis,
    expected: dict[int, Counter[str]],
    timeout: float = 90,
    leading_partial: int = LEADING_PARTIAL,
    breakdowns: dict[int, dict[str, Counter[str]]] | None = None,
) -> None:
    """Wait until every expected window is published, then compare each one exactly,
    its ``breakdowns`` too when given (`devtools.truth.truth_breakdowns`).

    The stream's first window(s) are published partial (their records before the
    stream's first one cannot be known): at most ``leading_partial`` of them, and only
    at the start; every other window must be complete and exact.
    """
    prefix = pipeline.names.prefix
    wanted = sorted(expected)

    def published() -> bool:
        done = set(indexed_windows(client, prefix)) | set(partial_windows(client, prefix))
        return set(wanted) <= done

    wait_for(
        published,
        timeout,
        lambda: (
            f"windows {wanted} published, have complete {indexed_windows(client, prefix)}, "
            f"partial {partial_windows(client, prefix)}\n" + pipeline.logs()
        ),
    )
    partial = [start for start in wanted if start in set(partial_windows(client, prefix))]
    assert partial == wanted[: len(partial)], f"partial windows {partial} inside the stream"
    assert len(partial) <= leading_partial, f"{len(partial)} partial windows: {partial}"
    for start in wanted[len(partial) :]:
        assert window_counts(client, prefix, start) == expected[start], start
        if breakdowns is not None:
            assert window_breakdowns(client, prefix, start) == breakdowns[start], start
