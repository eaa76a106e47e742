"""`WindowStore`: the writer's and the readers' sides on one Redis client.

Every service opens one with `WindowStore.connect`: the processor writes with it
(`wikipulse.store.writes`) and checks its own state back; the dashboard, the CLI and the
tools read with it (`wikipulse.store.reads`, `wikipulse.store.history`).
"""

from __future__ import annotations

import redis

from wikipulse.store.history import HistoryReader
from wikipulse.store.keys import KeyLayout
from wikipulse.store.writes import WindowWriter


class WindowStore(WindowWriter, HistoryReader):
    """Writes one partition's batches (the processor) and reads published windows and
    history (everyone else)."""

    @classmethod
    def connect(cls, url: str, prefix: str, timeout: float = 10.0) -> WindowStore:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=5, health_check_interval=15
        )
        return cls(client, KeyLayout(prefix))
