"""Unique Kafka and Redis names for one test, so tests run in any order and in parallel."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Names:
    suffix: str

    @classmethod
    def fresh(cls) -> Names:
        return cls(uuid.uuid4().hex[:10])

    @property
    def topic(self) -> str:
        return f"test.recentchange.{self.suffix}"

    @property
    def group(self) -> str:
        return f"test-group-{self.suffix}"

    @property
    def prefix(self) -> str:
        return f"test:{self.suffix}:"
