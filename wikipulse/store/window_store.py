"""`WindowStore`: the writer's and the readers' sides on one Redis client.

Every service opens one with `WindowStore.connect`: the processor writes with it
(`wikipulse.store.writes`) and checks its own state back; the dashboard, the CLI and the
tools read with it (`wikipulse.store.reads`, `wikipulse.store.history`).
"""

from __future__ import annotations

from wikipulse import redis_client
from wikipulse.settings import RedisSettings
from wikipulse.store.history import HistoryReader
from wikipulse.store.keys import KeyLayout
from wikipulse.store.writes import WindowWriter


class WindowStore(WindowWriter, HistoryReader):
    """Writes one partition's batches (the processor) and reads published windows and
    history (everyone else)."""

    @classmethod
    def connect(
        cls, settings: RedisSettings, timeout: float = 10.0, reads: bool = False
    ) -> WindowStore:
        """The store of ``settings`` (its URL or its Sentinels, its prefix); ``reads``:
        a reader's client, which waits out a failover (`wikipulse.redis_client`)."""
        client = redis_client.connect(settings, timeout=timeout, reads=reads)
        return cls(client, KeyLayout(settings.redis_key_prefix))
