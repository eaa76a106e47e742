"""The key layout: every Redis key and channel name of one deployment, built here only.

A name is spelled once, so the writer, the Lua step and every reader agree on it, and
`tests/unit/test_layout.py` holds that nothing else joins a prefix to a name.
`write_windows.lua` gets whole keys and key prefixes from here and only completes a
prefix with a window start. The table of keys is in docs/architecture.md ("The Redis
contract").

Two families: what readers read (`KeyLayout`: published windows, their indexes, history,
``meta``) and the processor's working state for one raw topic (`SourceKeys`), scoped by
the topic's Kafka id so that a topic created anew starts afresh.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceKeys:
    """The processor's working state for one raw topic (``source``: its Kafka topic id).

    Nothing here is read by readers; all of it can be rebuilt from the raw topic.
    """

    base: str

    @property
    def progress(self) -> str:
        """Per partition ``P``: ``P:offset`` (the last offset processed) and ``P:time``
        (the partition's clock, the newest event time it has seen)."""
        return f"{self.base}progress"

    @property
    def closed(self) -> str:
        """Per partition: the end (ms) of the newest window its clock has closed."""
        return f"{self.base}closed"

    @property
    def partial(self) -> str:
        """Per partition: ``from:till`` (ms), windows overlapping it lack records (the
        partition started counting inside them without the records before)."""
        return f"{self.base}partial"

    @property
    def pending(self) -> str:
        """Windows some partition has finalized that are not published yet."""
        return f"{self.base}pending"

    @property
    def durable(self) -> str:
        """A marker the processor writes and waits for before each commit: once a
        replica (or the disk) has it, it has every write before it."""
        return f"{self.base}durable"

    def open_windows(self, partition: int) -> str:
        """The starts of one partition's open (not yet final) windows."""
        return f"{self.base}open:{partition}"

    def open_window_prefix(self, partition: int) -> str:
        return f"{self.base}open:{partition}:"

    def open_window(self, partition: int, start_ms: int) -> str:
        """One partition's counts so far in one open window (a hash: wiki -> count)."""
        return f"{self.open_window_prefix(partition)}{start_ms}"

    def open_breakdown_prefix(self, partition: int) -> str:
        return f"{self.base}open-breakdown:{partition}:"

    def open_breakdown(self, partition: int, start_ms: int) -> str:
        """One partition's breakdowns so far in one open window (wiki -> `BREAKDOWN`)."""
        return f"{self.open_breakdown_prefix(partition)}{start_ms}"

    @property
    def final_prefix(self) -> str:
        return f"{self.base}final:"

    def final(self, start_ms: int | str) -> str:
        """The counts every partition has finalized so far of one unpublished window."""
        return f"{self.final_prefix}{start_ms}"

    @property
    def final_breakdown_prefix(self) -> str:
        return f"{self.base}final-breakdown:"

    def final_breakdown(self, start_ms: int | str) -> str:
        """The breakdowns every partition has finalized so far of one unpublished window."""
        return f"{self.final_breakdown_prefix}{start_ms}"


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Every Redis key and channel name of one deployment (one ``REDIS_KEY_PREFIX``)."""

    prefix: str = "wikipulse:"

    @property
    def every(self) -> str:
        """A ``SCAN`` pattern matching every key of this deployment."""
        return f"{self.prefix}*"

    @property
    def window_prefix(self) -> str:
        return f"{self.prefix}window:"

    def window(self, start_ms: int | str) -> str:
        """The sorted set of one published window's counts."""
        return f"{self.window_prefix}{start_ms}"

    @property
    def breakdown_prefix(self) -> str:
        return f"{self.prefix}breakdown:"

    def breakdown(self, start_ms: int | str) -> str:
        """The hash of one published window's breakdowns: wiki -> `BREAKDOWN` values, and
        `ALL_WIKIS` -> their sum. Published in the same step as `window`."""
        return f"{self.breakdown_prefix}{start_ms}"

    @property
    def complete(self) -> str:
        """The sorted set of complete windows, and the channel that announces new ones."""
        return f"{self.prefix}windows"

    @property
    def partial(self) -> str:
        """The sorted set of windows published with counts known to lack records."""
        return f"{self.prefix}partial"

    @property
    def meta(self) -> str:
        """``window_ms``, ``partitions`` and ``source`` of the processor that wrote last."""
        return f"{self.prefix}meta"

    def source(self, source: str) -> SourceKeys:
        """The processor's working state for the raw topic whose id is ``source``."""
        return SourceKeys(f"{self.prefix}src:{source}:")

    def rollup_prefix(self, resolution: str) -> str:
        return f"{self.prefix}rollup:{resolution}:"

    def rollup(self, resolution: str, start_ms: int | str) -> str:
        """One bucket of a resolution (a hash like `breakdown`: wiki -> `BREAKDOWN`
        values of its complete windows, `ALL_WIKIS` -> their sum)."""
        return f"{self.rollup_prefix(resolution)}{start_ms}"

    def rollups(self, resolution: str) -> str:
        """The sorted set of a resolution's complete buckets (member = score = start)."""
        return f"{self.prefix}rollups:{resolution}"

    def rollups_partial(self, resolution: str) -> str:
        """The buckets holding a window published partial (their counts lack records)."""
        return f"{self.prefix}rollups:{resolution}:partial"

    def rollups_pending(self, resolution: str) -> str:
        """The buckets that have windows but are not judged yet (not every partition
        has closed past their end)."""
        return f"{self.prefix}rollups:{resolution}:pending"
