"""What makes the sink's writes durable before Quix commits the offsets they cover.

Kafka's committed offset of a partition must never be ahead of what survives in Redis,
or a lost write would stay lost (the recount in `processor.recount` finds it, but only
by reading the raw topic again). So before each commit the sink makes the checkpoint's
writes durable, in what ways the server offers (`check_server` finds out, once and again
after a failover):

* **on its disk**: a server with ``appendfsync always`` fsyncs each write before it
  answers; on Redis 7.2+ without it, ``WAITAOF 1 0`` waits for the fsync;
* **on a replica**: with replicas (Sentinel, or a primary that has some), ``WAIT`` until
  ``REDIS_WAIT_REPLICAS`` of them have the writes. Sentinel normally promotes the
  replica with the most writes, so losing the primary normally loses nothing
  committed; but it picks by priority first and from INFO a second old, and a replica
  that acknowledged may be lost with the primary: a lagging one promoted lacks the
  newest writes, and they are recounted from Kafka (`processor.recount`): slower, never
  wrong. A primary cut off from its replicas cannot confirm: the checkpoint is
  read again rather than committed.

``confirm`` writes a marker and waits for it in one round trip on one connection: the
replication stream and the AOF are in order, so the marker's arrival covers every write
before it on that primary, from any connection and any earlier flush (a write whose
confirmation timed out, or one the previous process made before it crashed and that this
flush found counted already). It runs after every flush that has records to commit.

**On that primary.** redis-py retries a command that lost its connection on a new one,
and through Sentinel a new connection reaches whichever primary is current: a
confirmation sent as the primary died may be answered by the next one, which may lack
the checkpoint's writes. So the flush notes the primary's replication ID before its
writes (`primary_of`), and the confirmation reads it again in the same round trip: a
different one (a promoted replica always takes a new ID) is `NotDurable`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)


class UnsafeRedis(Exception):
    """A Redis the windows cannot be kept in (it may evict keys)."""


class NotDurable(Exception):
    """The checkpoint's writes could not be confirmed durable in time."""


@dataclass(frozen=True, slots=True)
class Durability:
    """How the writes of a checkpoint are made durable before the Kafka commit."""

    fsync: bool = False  # the server fsyncs each write (appendonly yes, appendfsync always)
    waitaof: bool = False  # WAITAOF 1 0 (Redis 7.2+, when it does not fsync each write)
    replicas: int = 0  # WAIT until this many replicas have the writes
    timeout_ms: int = 5000

    @property
    def confirms(self) -> bool:
        """Whether `confirm` has anything to wait for."""
        return self.waitaof or self.replicas > 0

    def __str__(self) -> str:
        disk = "fsync on each write" if self.fsync else "WAITAOF" if self.waitaof else None
        parts = [disk or "no fsync per write"]
        if self.replicas:
            parts.append(f"WAIT for {self.replicas} replica(s)")
        return ", ".join(parts)


def check_server(
    client: redis.Redis, wait_replicas: int | None, sentinel: bool, timeout_seconds: float
) -> Durability:
    """What this Redis offers to make a write durable, and that it never evicts the
    working state (an evicted open or final set would publish a window short).

    ``wait_replicas`` None: 1 when Redis has replicas (found through Sentinel, or a
    primary with replicas connected), else 0.
    """
    try:
        return _check_server(client, wait_replicas, sentinel, timeout_seconds)
    except redis.exceptions.NoPermissionError as exc:
        raise UnsafeRedis(
            f"the Redis user may not run what the processor needs ({exc}): it reads INFO "
            "and writes the windows with EVALSHA, WAIT and HSET (an ACL such as "
            "'+@read +@write +@scripting +info +wait +ping' on the key prefix)"
        ) from exc


def _check_server(
    client: redis.Redis, wait_replicas: int | None, sentinel: bool, timeout_seconds: float
) -> Durability:
    try:
        policy = str(client.config_get("maxmemory-policy").get("maxmemory-policy", ""))
    except redis.ResponseError:  # CONFIG disabled (managed Redis): the docs say why
        policy = ""
    if policy and policy != "noeviction":
        # volatile-* too: buckets and published windows carry a TTL, and an evicted
        # bucket still waiting for its windows would be listed complete, short
        raise UnsafeRedis(
            f"redis evicts keys (maxmemory-policy {policy}): the windows' state and "
            "history must never be evicted; use maxmemory-policy noeviction"
        )
    try:
        config = client.config_get("append*")
    except redis.ResponseError:  # CONFIG is disabled (managed Redis): ask for WAITAOF
        config = {}
    fsync = config.get("appendonly") == "yes" and config.get("appendfsync") == "always"
    version = str(client.info("server").get("redis_version", "0"))
    major, minor = (int(part) for part in [*version.split("."), "0"][:2])
    waitaof = not fsync and (major, minor) >= (7, 2) and config.get("appendonly", "yes") == "yes"
    replication = client.info("replication")
    if replication.get("role") != "master":
        log.error(
            "redis at %s is a replica: writes will be refused until it is a primary "
            "(point REDIS_URL at the primary, or set REDIS_SENTINELS)",
            client.connection_pool.connection_kwargs.get("host", "?"),
        )
    if wait_replicas is None:
        has_replicas = sentinel or int(replication.get("connected_slaves", 0)) > 0
        wait_replicas = 1 if has_replicas else 0
    found = Durability(fsync, waitaof, wait_replicas, int(timeout_seconds * 1000))
    if not fsync and not waitaof and not wait_replicas:
        log.warning(
            "redis neither fsyncs every write (appendfsync always) nor has WAITAOF or "
            "replicas to WAIT for: a crash can lose its last writes, which are then "
            "recounted from Kafka"
        )
    else:
        log.info("redis writes are made durable before each commit: %s", found)
    return found


def primary_of(client: redis.Redis) -> str | None:
    """The replication ID of the primary ``client`` reaches now (see "On that primary");
    None, with a warning, from a server that does not say (a proxy in front of Redis):
    the confirmation is then taken from whichever primary answers it."""
    found = client.info("replication").get("master_replid")
    if found:
        return str(found)
    global _unidentified
    if not _unidentified:
        _unidentified = True
        log.warning(
            "redis reports no master_replid (INFO replication): a confirmation cannot be "
            "tied to the primary the writes went to"
        )
    return None


_unidentified = False


def confirm(
    client: redis.Redis, durability: Durability, marker: str, origin: str | None = None
) -> None:
    """Wait until every write so far on this primary is durable as ``durability`` says;
    `NotDurable` when it is not within its timeout, or when the primary is not
    ``origin`` (`primary_of` before the writes). ``marker`` is a key of the
    processor's working state, written so that the wait covers a write on this very
    connection (WAIT and WAITAOF wait for the client's own last write)."""
    if not durability.confirms:
        return
    with client.pipeline(transaction=False) as pipe:
        pipe.hset(marker, "at", str(int(time.time() * 1000)))
        if durability.waitaof:
            pipe.execute_command("WAITAOF", 1, 0, durability.timeout_ms)  # type: ignore[no-untyped-call]
        if durability.replicas:
            pipe.execute_command(  # type: ignore[no-untyped-call]
                "WAIT", durability.replicas, durability.timeout_ms
            )
        if origin is not None:
            pipe.info("replication")
        answers = pipe.execute()
    if origin is not None:
        now = str(answers.pop().get("master_replid", ""))
        if now != origin:
            raise NotDurable(
                f"the primary changed during the checkpoint (replication ID {origin[:8]}… "
                f"became {now[:8]}…): its writes may be on the one before"
            )
    if durability.waitaof and int(answers[1][0]) < 1:
        raise NotDurable(f"redis did not fsync within {durability.timeout_ms} ms")
    if durability.replicas and int(answers[-1]) < durability.replicas:
        raise NotDurable(
            f"{answers[-1]} of {durability.replicas} replica(s) had the writes within "
            f"{durability.timeout_ms} ms"
        )
