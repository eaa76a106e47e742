"""What the writer's and the readers' sides stand on: one Redis client, one key layout,
and what the processor recorded in ``meta``.

`WindowStore` is both sides on one client (the processor writes with it and reads its
own state back; the dashboard only reads), so each side is a class of its own that
adds its state to this one, and `WindowStore` puts them together. ``meta`` is read by
both: the processor checks it against its settings before it writes, readers take the
window length from it.
"""

from __future__ import annotations

from typing import cast

import redis

from wikipulse.store.keys import KeyLayout


class StoreBase:
    """A Redis client and the key layout of one deployment (``REDIS_KEY_PREFIX``)."""

    def __init__(self, client: redis.Redis, keys: KeyLayout) -> None:
        self.client = client
        self.keys = keys

    def close(self) -> None:
        self.client.close()

    def recorded(self) -> tuple[int, int] | None:
        """``(window_ms, partitions)`` as the processor last recorded them, if it did."""
        found = self._meta("window_ms", "partitions")
        return (int(found[0]), int(found[1])) if found else None

    def recorded_source(self) -> tuple[str, int] | None:
        """``(source, partitions)`` as the processor last recorded them, if it did."""
        found = self._meta("source", "partitions")
        return (found[0].decode(), int(found[1])) if found else None

    def _meta(self, *fields: str) -> list[bytes] | None:
        """``fields`` of `KeyLayout.meta`, or None unless all of them are recorded."""
        found = cast(list[bytes | None], self.client.hmget(self.keys.meta, list(fields)))
        present = [value for value in found if value is not None]
        return present if len(present) == len(fields) else None
