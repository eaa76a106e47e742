"""How every service reaches Redis: one server by ``REDIS_URL``, or the primary that
Redis Sentinels name (``REDIS_SENTINELS``), followed across a failover without a restart.

With Sentinels, ``REDIS_URL`` still says how to talk to the primary (database, user,
password, TLS and its options); only its host and port give way to the address the
Sentinels report. Sentinels are dialled with the same TLS settings and their own
password (``REDIS_SENTINEL_PASSWORD``). A connection is made to the address Sentinel
reports at the moment it is opened: after a failover the old primary's connections fail
(refused, timed out, or READONLY once it is demoted, which redis-py turns into a
`redis.ConnectionError`), and the next one finds the new primary.

What a failover means to each side:

* the **writer** (the processor) treats every error that a failover or a primary cut
  off from its replicas produces as a reason to back off and read its progress again
  (`transient`): nothing it wrote is trusted until it is read back, and what the new
  primary lacks is recounted from Kafka (`processor.recount`);
* **readers** (dashboard, CLI) retry a read for a few seconds (`connect` with
  ``reads=True``), so a failover is a short pause, not an error page.

``wikipulse_redis_failovers_total`` counts, per process, each time the primary was found
at a new address.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from prometheus_client import Counter
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from wikipulse.settings import RedisSettings

log = logging.getLogger(__name__)

FAILOVERS = Counter(
    "wikipulse_redis_failovers",
    "times the Redis primary was found at a new address (a Sentinel failover)",
)
#: A read waits this many retries for a new primary (with the backoff below, about 6 s:
#: a Sentinel failover takes its down-after-milliseconds plus a second or two).
READ_RETRIES = 6
READ_BACKOFF = ExponentialBackoff(cap=2.0, base=0.2)
#: What a Redis answers while it cannot take a write it will take later: a demoted
#: primary (READONLY), a replica that lost its primary (MASTERDOWN, with
#: replica-serve-stale-data no), a server busy or full (TRYAGAIN; OOM with noeviction,
#: until it is given memory). LOADING is a `redis.ConnectionError` already.
TRANSIENT_ERRORS: tuple[type[redis.RedisError], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.ReadOnlyError,
    redis.exceptions.MasterDownError,
    redis.exceptions.TryAgainError,
    redis.OutOfMemoryError,
)
#: The same, where redis-py has no class for it: a primary cut off from its replicas
#: (min-replicas-to-write).
TRANSIENT_REPLIES = ("NOREPLICAS",)

_primaries: dict[tuple[str, tuple[tuple[str, int], ...]], tuple[str, int]] = {}
_primaries_lock = threading.Lock()
_moves = 0


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` is Redis being away or between primaries (back off and retry),
    as opposed to a mistake that retrying cannot fix."""
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(TRANSIENT_REPLIES)


def _found(settings: RedisSettings, address: tuple[str, int]) -> None:
    """Count and log the primary moving (once per process, whichever client saw it)."""
    global _moves
    key = (settings.redis_sentinel_master, tuple(settings.sentinels))
    address = (str(address[0]), int(address[1]))
    with _primaries_lock:
        before = _primaries.get(key)
        _primaries[key] = address
        moved = before is not None and before != address
        _moves += moved
    if before is None:
        log.info("redis primary %r is %s:%d", key[0], *address)
    elif moved:
        FAILOVERS.inc()
        log.warning(
            "redis primary %r moved from %s:%d to %s:%d (failover)", key[0], *before, *address
        )


def failovers_seen() -> int:
    """How many times this process found the primary at a new address (so far)."""
    return _moves


class _Sentinel(redis.sentinel.Sentinel):
    def __init__(self, settings: RedisSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self._settings = settings

    def discover_master(self, service_name: str) -> tuple[str, int]:
        address: tuple[str, int] = super().discover_master(service_name)  # type: ignore[no-untyped-call]
        _found(self._settings, address)
        return address


class _AsyncSentinel(redis.asyncio.sentinel.Sentinel):
    def __init__(self, settings: RedisSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self._settings = settings

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        address: tuple[str, int] = await super().discover_master(service_name)
        _found(self._settings, address)
        return address


def _tls(kwargs: dict[str, Any], ssl_class: type) -> dict[str, Any]:
    """``kwargs`` of a parsed URL with its TLS connection class as ``ssl=True``: the
    form Sentinel clients take (they pick their own connection classes)."""
    kwargs = dict(kwargs)
    if kwargs.pop("connection_class", None) is ssl_class:
        kwargs["ssl"] = True
    return kwargs


def _sentinel_kwargs(settings: RedisSettings, primary: dict[str, Any]) -> dict[str, Any]:
    """How to dial the Sentinels: the primary's TLS settings, their own password."""
    found = {k: v for k, v in primary.items() if k == "ssl" or k.startswith("ssl_")}
    found["socket_timeout"] = found["socket_connect_timeout"] = 3.0
    if settings.redis_sentinel_password is not None:
        found["password"] = settings.redis_sentinel_password.get_secret_value()
    return found


def connect(settings: RedisSettings, *, timeout: float = 10.0, reads: bool = False) -> redis.Redis:
    """A client of the Redis the settings name; ``reads``: retry a failed command for a
    few seconds (readers; the writer backs off on its own and reads its progress again)."""
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": 5,
        "health_check_interval": 15,
    }
    if reads:
        options["retry"] = Retry(READ_BACKOFF, READ_RETRIES)
    if not settings.sentinels:
        return redis.Redis.from_url(settings.redis_url, **options)
    client: redis.Redis = _primary(
        settings, options, redis.connection.parse_url, redis.connection.SSLConnection, _Sentinel
    )
    return client


def connect_async(settings: RedisSettings, *, timeout: float = 5.0) -> redis.asyncio.Redis:
    """An asyncio client of the same Redis (the dashboard's live push subscribes with it)."""
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": 5,
        # a subscription idles: a ping every few seconds finds a primary gone silent
        "health_check_interval": 5,
        "retry": Retry(READ_BACKOFF, READ_RETRIES),
    }
    if not settings.sentinels:
        return redis.asyncio.Redis.from_url(settings.redis_url, **options)
    client: redis.asyncio.Redis = _primary(
        settings,
        options,
        redis.asyncio.connection.parse_url,
        redis.asyncio.connection.SSLConnection,
        _AsyncSentinel,
    )
    return client


def _primary(
    settings: RedisSettings,
    options: dict[str, Any],
    parse_url: Callable[[str], Mapping[str, Any]],
    ssl_class: type,
    sentinel_class: type[_Sentinel] | type[_AsyncSentinel],
) -> Any:
    """A client of the primary the Sentinels name, made the same way by redis-py's
    blocking and asyncio halves (each passes its own URL parser, TLS connection class
    and Sentinel): ``REDIS_URL``'s options without its host and port, then
    ``options``."""
    primary = _tls(dict(parse_url(settings.redis_url)), ssl_class)
    primary.pop("host", None)
    primary.pop("port", None)
    sentinel = sentinel_class(
        settings,
        sentinels=settings.sentinels,
        sentinel_kwargs=_sentinel_kwargs(settings, primary),
    )
    return sentinel.master_for(settings.redis_sentinel_master, **{**primary, **options})
