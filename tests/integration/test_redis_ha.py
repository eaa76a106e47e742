"""The processor's sink and the readers against Redis with replicas and Sentinels.

A real primary with two replicas and three Sentinels (``services/local.sh`` with
``REDIS_REPLICAS=2``), replicas frozen and nodes killed on purpose: Kafka commits a
checkpoint only once a replica has its writes, a primary between roles is waited out
instead of crashing the processor, and readers follow a failover by themselves.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from quixstreams.sinks import SinkBackpressureError

import processor.sink
from devtools.observe import wait_for
from devtools.servers import LocalServers
from processor.durability import NotDurable, check_server
from processor.records import Verdict
from processor.sink import RedisWindowSink
from tests.support.names import Names
from wikipulse import redis_client
from wikipulse.settings import RedisSettings
from wikipulse.store.window_store import WindowStore
from wikipulse.store.writes import Batch, Progress

WINDOW, GRACE = 30_000, 5_000
S0 = 1_767_225_600_000
EN = b"en.wikipedia.org"


class NoKafka:
    """A consumer group that never committed, on a topic that holds everything."""

    def committed(self, partition: int) -> int | None:
        return None

    def low_watermark(self, partition: int) -> int:
        return 0

    def rewind(self, partition: int, offset: int) -> None:
        raise AssertionError("nothing to rewind")


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServers]:
    servers = LocalServers(Path(tmp_path_factory.mktemp("redis-ha")), redis_replicas=2)
    servers.start("redis")
    try:
        yield servers
    finally:
        servers.stop("redis")


@pytest.fixture
def healed(ha: LocalServers) -> LocalServers:
    """Every node up, the primary with both replicas online (a test may have killed one)."""
    ha.start("redis")
    return ha


def settings_of(ha: LocalServers, prefix: str) -> RedisSettings:
    return RedisSettings(
        redis_url="redis://ignored:1/0", redis_key_prefix=prefix, redis_sentinels=ha.sentinels
    )


def sink_of(settings: RedisSettings, wait_timeout: float = 0.5) -> RedisWindowSink:
    sink = RedisWindowSink(
        settings,
        window_ms=WINDOW,
        grace_ms=GRACE,
        ttl_seconds=3600,
        partitions=1,
        seeker=NoKafka(),
        backpressure_seconds=0.1,
        wait_timeout_seconds=wait_timeout,
    )
    sink.setup()
    return sink


def add(sink: RedisWindowSink, offset: int, at: int) -> None:
    sink.add((Verdict.EVENT, at, b"", "", b"eh"), EN, at, [], "raw", 0, offset)


def replicas_of(ha: LocalServers) -> list[int]:
    primary = ha.primary()
    return [node for node in range(1, len(ha.redis_ports) + 1) if node != primary]


@contextmanager
def frozen(ha: LocalServers, nodes: list[int]) -> Iterator[None]:
    """SIGSTOP ``nodes`` for the block: to their primary, replicas gone silent."""
    pids = [ha.redis_pid(node) for node in nodes]
    assert all(pids), pids
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)  # type: ignore[arg-type]
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)  # type: ignore[arg-type]


def test_a_checkpoint_is_committed_only_once_a_replica_has_its_writes(healed):
    prefix = Names.fresh().prefix
    settings = settings_of(healed, prefix)
    sink = sink_of(settings)
    assert sink.durability.replicas == 1 and sink.durability.fsync
    add(sink, 0, S0 + 1)
    sink.flush()  # replicas online: confirmed, Quix may commit

    with frozen(healed, replicas_of(healed)):
        add(sink, 1, S0 + 2)
        with pytest.raises(SinkBackpressureError) as refused:
            sink.flush()  # the write applied on the primary, but no replica has it
        assert isinstance(refused.value.__cause__, NotDurable)
        sink.on_paused()
    # Quix reads the checkpoint again: counted once, confirmed now
    add(sink, 1, S0 + 2)
    add(sink, 2, S0 + WINDOW + GRACE)
    sink.flush()
    store = WindowStore.connect(settings, reads=True)
    assert store.progress(0) == Progress(2, S0 + WINDOW + GRACE)
    assert store.counts([S0])[S0] == {"en.wikipedia.org": 2}


def test_records_an_earlier_process_counted_are_confirmed_before_the_commit(healed):
    """A replica replays what its predecessor wrote but died before confirming: it finds
    the records counted and writes nothing, yet Kafka must not commit them before a
    replica has that earlier write."""
    prefix = Names.fresh().prefix
    settings = settings_of(healed, prefix)
    sink = sink_of(settings)
    with frozen(healed, replicas_of(healed)):
        earlier = WindowStore.connect(settings)  # the process that died: no confirmation
        earlier.write(
            Batch(0, S0, {S0: {"en.wikipedia.org": 2}}, Progress(), Progress(1, S0 + 2)),
            partitions=1,
            window_ms=WINDOW,
            ttl_seconds=3600,
        )
        add(sink, 0, S0 + 1)
        add(sink, 1, S0 + 2)
        with pytest.raises(SinkBackpressureError) as refused:
            sink.flush()  # nothing new to write, and still not confirmed
        assert isinstance(refused.value.__cause__, NotDurable)
        sink.on_paused()
    add(sink, 0, S0 + 1)
    add(sink, 1, S0 + 2)
    sink.flush()
    assert WindowStore.connect(settings).progress(0) == Progress(1, S0 + 2)


def test_a_confirmation_answered_by_the_next_primary_does_not_cover_the_writes(healed, monkeypatch):
    """Found in review: redis-py sends a command whose connection broke again on a new
    connection, and through Sentinel that reaches the next primary. Here the
    checkpoint's write reaches only the primary (its replicas frozen), the primary dies
    before the confirmation, and the confirmation is answered by the promoted replica,
    which has a replica of its own by then and may lack the write: Kafka must not commit
    on its word."""
    prefix = Names.fresh().prefix
    settings = settings_of(healed, prefix)
    sink = sink_of(settings, wait_timeout=2.0)
    add(sink, 0, S0 + 1)
    sink.flush()  # confirmed on every node
    old, replicas = healed.primary(), replicas_of(healed)
    assert old is not None
    pids = [healed.redis_pid(node) for node in replicas]

    def promoted() -> bool:
        node = healed.primary()
        if node in (None, old):
            return False
        port = healed.redis_ports[node - 1]
        return int(redis.Redis(port=port).info("replication")["connected_slaves"]) > 0

    real = processor.sink.confirm

    def primary_dies_first(*args: Any) -> None:
        monkeypatch.setattr(processor.sink, "confirm", real)  # once
        healed.kill_redis_node(old)
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        wait_for(promoted, 60, "a replica promoted, with a replica of its own")
        real(*args)

    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    monkeypatch.setattr(processor.sink, "confirm", primary_dies_first)
    add(sink, 1, S0 + 2)
    with pytest.raises(SinkBackpressureError) as refused:
        sink.flush()
    assert isinstance(refused.value.__cause__, NotDurable)
    # whether the promoted replica had the write is chance (what the old primary had
    # sent reached it once it woke, here): Quix reads the checkpoint again, and it is
    # counted once on the new primary, confirmed there
    sink.on_paused()
    add(sink, 1, S0 + 2)
    add(sink, 2, S0 + WINDOW + GRACE)
    sink.flush()
    store = WindowStore.connect(settings, reads=True)
    assert store.progress(0) == Progress(2, S0 + WINDOW + GRACE)
    assert store.counts([S0])[S0] == {"en.wikipedia.org": 2}


def test_a_primary_cut_off_from_its_replicas_refuses_writes_and_the_sink_waits(healed):
    """min-replicas-to-write: a primary that hears from no replica stops taking writes
    (no split brain); to the sink that is Redis away for a moment, not a failure."""
    prefix = Names.fresh().prefix
    settings = settings_of(healed, prefix)
    sink = sink_of(settings)
    primary = redis_client.connect(settings)
    primary.config_set("min-replicas-max-lag", 1)
    try:
        with frozen(healed, replicas_of(healed)):
            time.sleep(2.5)  # replicas silent past min-replicas-max-lag
            with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
                primary.set(f"{prefix}probe", 1)
            add(sink, 0, S0 + 1)
            with pytest.raises(SinkBackpressureError) as refused:
                sink.flush()
            assert redis_client.transient(refused.value.__cause__)
            sink.on_paused()
    finally:
        primary.config_set("min-replicas-max-lag", 10)
    wait_for(lambda: _writable(primary, prefix), 15, "the primary to take writes again")
    add(sink, 0, S0 + 1)
    sink.flush()


def test_a_sink_pointed_at_a_replica_waits_instead_of_failing(healed, caplog):
    """A replica (a demoted primary, or a URL naming the wrong node) answers writes with
    READONLY: the sink backs off and says what is wrong."""
    port = healed.redis_ports[replicas_of(healed)[0] - 1]
    settings = RedisSettings(
        redis_url=f"redis://127.0.0.1:{port}/0", redis_key_prefix=Names.fresh().prefix
    )
    sink = sink_of(settings)
    assert "is a replica" in caplog.text
    add(sink, 0, S0 + 1)
    with pytest.raises(SinkBackpressureError) as refused:
        sink.flush()
    assert isinstance(refused.value.__cause__, redis.ReadOnlyError)


def test_durability_is_what_the_primary_offers(healed):
    primary = redis_client.connect(settings_of(healed, "x:"))
    found = check_server(primary, None, sentinel=True, timeout_seconds=5)
    assert (found.fsync, found.waitaof, found.replicas) == (True, False, 1)
    alone = check_server(primary, 0, sentinel=True, timeout_seconds=5)
    assert alone.replicas == 0 and not alone.confirms


def test_readers_follow_a_failover_by_themselves(healed):
    """The same reader, never reconnected by hand, reads from the new primary; the
    failover is counted once per process."""
    prefix = Names.fresh().prefix
    settings = settings_of(healed, prefix)
    writer = WindowStore.connect(settings)
    writer.write(
        Batch(0, S0 + WINDOW, {S0: {"en.wikipedia.org": 3}}),
        partitions=1,
        window_ms=WINDOW,
        ttl_seconds=3600,
    )
    reader = WindowStore.connect(settings, reads=True)
    assert reader.latest() == S0
    redis_client.connect(settings).execute_command("WAIT", 2, 5000)  # both replicas have it
    before, old = redis_client.failovers_seen(), healed.primary()
    assert old is not None
    healed.kill_redis_node(old)
    began = time.monotonic()
    found = wait_for(lambda: _read(reader), 60, "the reader to read from the new primary")
    assert found == S0
    assert healed.primary() != old
    assert redis_client.failovers_seen() == before + 1
    print(f"read again {time.monotonic() - began:.1f} s after the primary died")


def test_the_asyncio_client_reaches_the_primary_the_sentinels_name(healed):
    """The dashboard's live push subscribes with it (`redis_client.connect_async`): it
    dials the primary the Sentinels name, with ``REDIS_URL``'s database, as `connect`."""
    prefix = Names.fresh().prefix
    settings = settings_of(healed, prefix).model_copy(update={"redis_url": "redis://ignored:1/3"})
    redis_client.connect(settings).set(f"{prefix}probe", "primary")

    async def read() -> tuple[object, str]:
        client = redis_client.connect_async(settings)
        try:
            value = await client.get(f"{prefix}probe")
            return value, (await client.info("replication"))["role"]
        finally:
            await client.aclose()

    assert asyncio.run(read()) == (b"primary", "master")
    assert redis_client.connect(settings_of(healed, prefix)).get(f"{prefix}probe") is None


def _read(store: WindowStore) -> int | None:
    try:
        return store.latest()
    except redis.RedisError:
        return None


def _writable(client: redis.Redis, prefix: str) -> bool:
    try:
        client.set(f"{prefix}probe", 1)
        return True
    except redis.RedisError:
        return False
